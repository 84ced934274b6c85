package reviewweb

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// auditFilter is the audit log's query: each field empty means any.
type auditFilter struct {
	Scope, Tool, Decision string
	Since, Until          time.Time
	Limit                 int
}

// maxAuditRows bounds one page of the audit log.
const maxAuditRows = 500

func parseAuditFilter(r *http.Request) (auditFilter, error) {
	q := r.URL.Query()
	f := auditFilter{Scope: q.Get("scope"), Tool: q.Get("tool"), Decision: q.Get("decision"), Limit: 200}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		v := strings.TrimSpace(q.Get(p.name))
		if v == "" {
			continue
		}
		t, err := parseTime(v)
		if err != nil {
			return f, fmt.Errorf("%s: %w", p.name, err)
		}
		*p.dst = t
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return f, errors.New("limit: a positive number")
		}
		f.Limit = min(n, maxAuditRows)
	}
	return f, nil
}

// parseTime reads RFC 3339 or what an <input type="datetime-local">
// sends (taken as UTC).
func parseTime(v string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New("a time such as 2026-12-01T09:30 or 2026-12-01T09:30:00Z")
}

func (h *Handler) auditEvents(ctx context.Context, f auditFilter) ([]AuditEvent, error) {
	var since, until any
	if !f.Since.IsZero() {
		since = f.Since
	}
	if !f.Until.IsZero() {
		until = f.Until
	}
	rows, err := h.cfg.Pool.Query(ctx, `SELECT id, at, session, scope, actor, tool, coalesce(sql, ''), decision,
		coalesce(reason, ''), rows, elapsed_ms, coalesce(change_id::text, '')
		FROM airlock.audit_log
		WHERE ($1 = '' OR scope = $1) AND ($2 = '' OR tool = $2) AND ($3 = '' OR decision = $3)
		AND ($4::timestamptz IS NULL OR at >= $4) AND ($5::timestamptz IS NULL OR at <= $5)
		ORDER BY at DESC, id DESC LIMIT $6`, f.Scope, f.Tool, f.Decision, since, until, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("read the audit log: %w", err)
	}
	evs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AuditEvent, error) {
		var e AuditEvent
		err := r.Scan(&e.ID, &e.At, &e.Session, &e.Scope, &e.Actor, &e.Tool, &e.SQL, &e.Decision, &e.Reason, &e.Rows, &e.ElapsedMS, &e.ChangeID)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("read the audit log: %w", err)
	}
	if evs == nil {
		evs = []AuditEvent{}
	}
	return evs, nil
}

func (h *Handler) apiAudit(w http.ResponseWriter, r *http.Request) {
	f, err := parseAuditFilter(r)
	if err != nil {
		apiError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	ctx, cancel := reqContext(r, readTimeout)
	defer cancel()
	evs, err := h.auditEvents(ctx, f)
	if err != nil {
		answer(w, Outcome{}, err)
		return
	}
	writeJSON(w, http.StatusOK, AuditJSON{Events: evs})
}
