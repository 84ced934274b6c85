package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlock-dev/airlock/audit"
	"github.com/airlock-dev/airlock/notify"
	"github.com/airlock-dev/airlock/review"
	"github.com/airlock-dev/airlock/scopes"
)

// notifier is the service's notifications (docs/architecture.md,
// Reviewers): it listens to the database's announcements of every new
// change, approval, decision and expiry, whoever made them (the service,
// the review page, a reviewer's CLI, the reaper), reads the row announced,
// and hands the event to notify, which delivers it in the background.
type notifier struct {
	scope *scopes.Scope
	store *review.Store
	n     *notify.Notifier
	base  func() string
	log   *slog.Logger

	mu   sync.Mutex
	sent map[string]bool // kind:id:status already sent, so a repeated NOTIFY sends nothing twice
}

// startNotifications starts the notifier when --notify-webhook is given;
// stop flushes what is queued (for up to 2 s: a receiver that hangs must
// not hold up the shutdown) and stops.
func startNotifications(ctx context.Context, o *reviewServeOptions, scope *scopes.Scope, pool *pgxpool.Pool, base func() string, logger *slog.Logger) (stop func(), err error) {
	if len(o.webhooks) == 0 {
		if o.secretFile != "" {
			return nil, errors.New("--notify-secret-file needs --notify-webhook")
		}
		return func() {}, nil
	}
	secret := os.Getenv(notifySecretEnv)
	if o.secretFile != "" {
		if secret, err = readSecretFile(o.secretFile); err != nil {
			return nil, err
		}
	}
	if len(secret) < 32 {
		return nil, fmt.Errorf("notifications need a signing secret of at least 32 characters in %s or --notify-secret-file (generate one with: openssl rand -hex 32); receivers check every event's signature with it", notifySecretEnv)
	}
	var targets []notify.Target
	for _, w := range o.webhooks {
		t, err := notify.ParseTarget(w)
		if err != nil {
			return nil, fmt.Errorf("--notify-webhook: %w", err)
		}
		targets = append(targets, t)
	}
	auditLog := audit.NewLog(pool, logger)
	nt := &notifier{scope: scope, store: review.NewStore(pool, nil), base: base, log: logger, sent: map[string]bool{}}
	nt.n, err = notify.New(notify.Config{
		Targets: targets, Secret: []byte(secret), Logger: logger,
		OnFailure: func(t notify.Target, ev notify.Event, err error) {
			auditLog.Record(audit.Event{Actor: "airlock", Tool: "notify", Scope: ev.Scope, Decision: audit.Failed,
				Reason: fmt.Sprintf("%s to %s: %v", ev.Type, redactURL(t.URL), err), ChangeID: changeID(ev)})
		},
	})
	if err != nil {
		auditLog.Close()
		return nil, err
	}
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	connect := func(ctx context.Context) (*pgx.Conn, error) {
		return pgx.ConnectConfig(ctx, pool.Config().ConnConfig.Copy())
	}
	go func() {
		defer close(done)
		review.Listen(lctx, connect, logger, nt.announced)
	}()
	logger.Info("notifying webhooks of held changes", "targets", len(targets))
	return func() {
		cancel()
		<-done
		cctx, ccancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer ccancel()
		_ = nt.n.Close(cctx)
		auditLog.Close()
	}, nil
}

// redactURL drops what may be secret in a webhook URL (its query, and a
// Slack webhook's path) from what is logged and audited.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(webhook)"
	}
	return u.Scheme + "://" + u.Host + "/…"
}

func changeID(ev notify.Event) string {
	if strings.HasPrefix(ev.Type, "change.") {
		return ev.ID
	}
	return ""
}

// once reports whether key is new, remembering it. The memory is bounded:
// past it, it starts over (a duplicate notification then is possible,
// never a missed one).
func (nt *notifier) once(key string) bool {
	nt.mu.Lock()
	defer nt.mu.Unlock()
	if nt.sent[key] {
		return false
	}
	if len(nt.sent) > 100000 {
		nt.sent = map[string]bool{}
	}
	nt.sent[key] = true
	return true
}

var changeEvents = map[review.Status]string{
	review.StatusPending:    notify.EventPending,
	review.StatusCommitted:  notify.EventCommitted,
	review.StatusRolledBack: notify.EventRolledBack,
	review.StatusExpired:    notify.EventExpired,
	review.StatusDrifted:    notify.EventDrifted,
}

// announced turns one announcement into an event, from the row as the
// database has it now: an announcement is only a hint (anyone may
// NOTIFY), so a change not of this service's scope, or not in the state
// announced, sends nothing.
func (nt *notifier) announced(a review.Announcement) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	switch a.Kind {
	case "change":
		c, err := nt.store.Get(ctx, a.ID)
		if err != nil || c.Scope != nt.scope.Name || string(c.Status) != a.Status {
			return
		}
		typ, ok := changeEvents[c.Status]
		if !ok || !nt.once("change:"+c.ID+":"+string(c.Status)) {
			return
		}
		nt.n.Notify(nt.changeEvent(typ, c))
	case "branch":
		b, err := nt.store.GetBranch(ctx, a.ID)
		if err != nil || b.Scope != nt.scope.Name || string(b.Status) != a.Status {
			return
		}
		typ := map[review.BranchStatus]string{review.BranchMerged: notify.EventBranchMerged, review.BranchDiscarded: notify.EventBranchDiscarded}[b.Status]
		if typ == "" || !nt.once("branch:"+b.ID+":"+string(b.Status)) {
			return
		}
		nt.n.Notify(notify.Event{Type: typ, ID: b.ID, Scope: b.Scope, Mode: string(review.ModeBranch), Status: string(b.Status),
			Reviewer: b.Reviewer, Reason: b.Reason, Link: nt.base() + "/review/branches/" + b.ID, RowsAffected: 0})
	case "approval":
		nt.approval(ctx, a)
	}
}

func (nt *notifier) approval(ctx context.Context, a review.Announcement) {
	required := 1
	if nt.scope.Write != nil {
		required = nt.scope.Write.Approvals
	}
	recs, err := nt.store.Approvals(ctx, a.ID)
	if err != nil || len(recs) == 0 {
		return
	}
	if a.Status == "branch" {
		b, err := nt.store.GetBranch(ctx, a.ID)
		if err != nil || b.Scope != nt.scope.Name || b.Status != review.BranchLive {
			return
		}
		last := recs[len(recs)-1]
		if !nt.once("approval:" + a.ID + ":" + last.Reviewer + ":" + last.Approval) {
			return
		}
		nt.n.Notify(notify.Event{Type: notify.EventApproved, ID: b.ID, Scope: b.Scope, Mode: string(review.ModeBranch), Status: string(b.Status),
			Reviewer: last.Reviewer, Approvals: countOf(recs, last.Approval), Required: required, Link: nt.base() + "/review/branches/" + b.ID})
		return
	}
	c, err := nt.store.Get(ctx, a.ID)
	if err != nil || c.Scope != nt.scope.Name || c.Status != review.StatusPending {
		return
	}
	hash := c.ApprovalHash()
	last := recs[len(recs)-1]
	n := countOf(recs, hash)
	// The approval that completes the count is followed by the commit's
	// own event.
	if last.Approval != hash || n >= required || !nt.once("approval:"+c.ID+":"+last.Reviewer) {
		return
	}
	ev := nt.changeEvent(notify.EventApproved, c)
	ev.Reviewer, ev.Approvals, ev.Required = last.Reviewer, n, required
	nt.n.Notify(ev)
}

func countOf(recs []review.ApprovalRecord, hash string) int {
	n := 0
	for _, r := range recs {
		if r.Approval == hash {
			n++
		}
	}
	return n
}

func (nt *notifier) changeEvent(typ string, c *review.Change) notify.Event {
	rows, _ := rowsAffected(c)
	ev := notify.Event{
		Type: typ, ID: c.ID, Ticket: c.Ticket, Summary: c.Summary, Scope: c.Scope, Mode: string(c.Mode), Risk: c.Risk(),
		RowsAffected: rows, Status: string(c.Status), Link: nt.base() + "/review/changes/" + c.ID,
	}
	if c.Status != review.StatusPending {
		ev.Reviewer, ev.Reason = c.Reviewer, c.Reason
	}
	if nt.scope.Write != nil {
		ev.Required = nt.scope.Write.Approvals
	}
	return ev
}
