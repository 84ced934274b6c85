package reviewweb

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/airlock-dev/airlock/audit"
	"github.com/airlock-dev/airlock/internal/safetext"
	"github.com/airlock-dev/airlock/migrate"
	"github.com/airlock-dev/airlock/review"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

func staticHandler() http.Handler {
	sub, _ := fs.Sub(staticFS, "static")
	return http.FileServerFS(sub)
}

// Every string that came from the agent or the database goes through
// safetext before html/template escapes it: the page shows a reviewer
// exactly what is there, invisible and look-alike characters as escapes
// (docs/architecture.md, Layers of defense).
var funcs = template.FuncMap{
	// safe takes review's typed words (review.Status, review.Mode, …) as
	// well as strings: a template function's string parameter would refuse
	// them at run time.
	"safe": func(v reflect.Value) string {
		switch {
		case !v.IsValid():
			return ""
		case v.Kind() == reflect.String:
			return safetext.Line(v.String())
		}
		return safetext.Line(fmt.Sprint(v.Interface()))
	},
	"clip": func(n int, s string) string { return safetext.LineMax(s, n) },
	"sqlLines": func(s string) []string {
		return safetext.Block(s)
	},
	"stamp": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"iso":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"add":   func(a, b int) int { return a + b },
	"list":  func() []audit.Decision { return audit.Decisions },
	"lower": strings.ToLower,
	"short": func(s string) string {
		if len(s) > 8 {
			return s[:8]
		}
		return s
	},
	"locks": func(ls []migrate.Lock) string {
		parts := make([]string, len(ls))
		for i, l := range ls {
			parts[i] = safetext.Line(l.Relation) + " " + safetext.Line(l.Mode)
		}
		return strings.Join(parts, ", ")
	},
	"change": func(c migrate.SchemaChange) string { return safetext.Line(c.String()) },
}

var templates = template.Must(template.New("").Funcs(funcs).ParseFS(templateFS, "templates/*.html"))

// view is what every page gets.
type view struct {
	Title    string
	Reviewer string
	CSRF     string
	Flash    string
	Nav      string
	Refresh  int // seconds, for the pending list's script
	Body     any
}

type loginView struct{ Error string }

// render executes a page into a buffer first, so that a template failure
// is an error page, never half a page.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, body any) {
	v := view{Title: titleOf(name), Nav: name, Body: body, Refresh: int(h.cfg.Refresh.Seconds())}
	if wh := reviewerOf(r.Context()); wh.name != "" {
		v.Reviewer = wh.name
		if wh.sess != nil {
			v.CSRF = wh.sess.csrf
			v.Flash = h.sessions.takeFlash(wh.sess)
		}
	}
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, name, v); err != nil {
		h.log.Error("review page: render failed", "page", name, "err", err)
		http.Error(w, "the review page failed to render this page; see the service log", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func titleOf(name string) string {
	switch name {
	case "pending":
		return "Pending changes"
	case "change":
		return "Change"
	case "branches":
		return "Branches"
	case "branch":
		return "Branch"
	case "audit":
		return "Audit log"
	case "login":
		return "Sign in"
	}
	return "airlock review"
}

type errorView struct {
	Status  int
	Message string
}

func (h *Handler) renderError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	h.render(w, r, status, "error", errorView{Status: status, Message: msg})
}

// pendingRow is one line of the pending list.
type pendingRow struct {
	ID, Ticket, Scope, Mode, Risk, Summary string
	Rows                                   string
	Age, ExpiresIn                         string
	Approvals, Required                    int
	Expired                                bool
}

func (h *Handler) pendingList(r *http.Request) ([]pendingRow, error) {
	ctx, cancel := reqContext(r, readTimeout)
	defer cancel()
	list, err := h.cfg.Store.Pending(ctx)
	if err != nil {
		return nil, err
	}
	now := h.cfg.Now()
	out := make([]pendingRow, 0, len(list))
	for _, c := range list {
		_, cj, err := h.changeJSON(ctx, c)
		if err != nil {
			return nil, err
		}
		row := pendingRow{
			ID: c.ID, Ticket: c.Ticket, Scope: c.Scope, Mode: string(c.Mode), Risk: c.Risk(), Summary: c.Summary,
			Rows: strconv.FormatInt(cj.Change.RowsAffected, 10), Age: human(now.Sub(c.CreatedAt)),
			Approvals: len(cj.Approvals), Required: cj.Required, Expired: c.Expired(now),
		}
		if row.Expired {
			row.ExpiresIn = "expired " + human(now.Sub(c.ExpiresAt)) + " ago"
		} else {
			row.ExpiresIn = "in " + human(c.ExpiresAt.Sub(now))
		}
		out = append(out, row)
	}
	return out, nil
}

type pendingView struct {
	Rows    []pendingRow
	Updated string
}

func (h *Handler) pendingPage(w http.ResponseWriter, r *http.Request) {
	rows, err := h.pendingList(r)
	if err != nil {
		h.failed(w, r, err)
		return
	}
	h.render(w, r, http.StatusOK, "pending", pendingView{Rows: rows, Updated: h.cfg.Now().UTC().Format("15:04:05 UTC")})
}

// pendingRows is the pending list's table body alone, which the page's
// script fetches to update itself.
func (h *Handler) pendingRows(w http.ResponseWriter, r *http.Request) {
	rows, err := h.pendingList(r)
	if err != nil {
		h.failed(w, r, err)
		return
	}
	h.render(w, r, http.StatusOK, "pending-rows", pendingView{Rows: rows, Updated: h.cfg.Now().UTC().Format("15:04:05 UTC")})
}

type changeView struct {
	C         *review.Change
	J         ChangeJSON
	Hash      string
	Open      bool
	Waiting   int
	Approved  bool // the signed-in reviewer approved it already
	Age       string
	ExpiresIn string
	// Revert is, for a committed change, whether and how it can be
	// reverted; RevertError a revert refused on this page.
	Revert      *revertView
	RevertError *revertErrorView
	// RevertRows, on a revert, counts the rows its plan restores.
	RevertRows int64
}

// revertView is the change page's part on reverting a committed change.
type revertView struct {
	Possible bool
	// Offer: Possible, and no revert of it is pending or committed.
	Offer  bool
	Until  time.Time
	In     string
	Reason string
	// Live is the revert pending or committed, when there is one.
	Live          *ChangeRef
	OnlyUnchanged bool // the checkbox as the reviewer left it
	Rows          []relationImages
	DDL           []string
}

type relationImages struct {
	Relation      string
	Before, After int64
}

// revertErrorView is a refused revert: the code, the message, and for a
// conflict the keys of the rows changed since, per table.
type revertErrorView struct {
	Code, Message string
	Tables        []conflictKeys
	// More counts the rows in the way whose keys are not listed (the
	// store lists at most 20 a table).
	More int
}

type conflictKeys struct {
	Relation string
	Keys     []string
}

// changeView builds the change page of id.
func (h *Handler) changeView(r *http.Request, id string) (changeView, error) {
	ctx, cancel := reqContext(r, readTimeout)
	defer cancel()
	c, cj, err := h.loadChange(ctx, id)
	if err != nil {
		return changeView{}, err
	}
	now := h.cfg.Now()
	v := changeView{C: c, J: cj, Hash: cj.Change.ApprovalHash, Age: human(now.Sub(c.CreatedAt)),
		Open:    c.Status == review.StatusPending && c.Mode != review.ModeBranch && !c.Expired(now),
		Waiting: max(0, cj.Required-len(cj.Approvals))}
	if c.Expired(now) {
		v.ExpiresIn = "expired " + human(now.Sub(c.ExpiresAt)) + " ago"
	} else {
		v.ExpiresIn = "in " + human(c.ExpiresAt.Sub(now))
	}
	me := reviewerOf(r.Context()).name
	for _, a := range cj.Approvals {
		v.Approved = v.Approved || a.Reviewer == me
	}
	if c.Revert != nil {
		for _, t := range c.Revert.Tables {
			v.RevertRows += t.PutBack + t.Restored + t.Removed
		}
	}
	if rj := cj.Revertibility; rj != nil {
		rv := &revertView{Possible: rj.Possible, Until: rj.Until, In: human(rj.Until.Sub(now)), Reason: rj.Reason, DDL: rj.DDL}
		for _, ref := range cj.RevertedBy {
			if ref.Status == review.StatusPending || ref.Status == review.StatusCommitting || ref.Status == review.StatusCommitted {
				rv.Live = &ref
			}
		}
		rv.Offer = rv.Possible && rv.Live == nil
		rels := make([]string, 0, len(rj.Rows))
		for rel := range rj.Rows {
			rels = append(rels, rel)
		}
		slices.Sort(rels)
		for _, rel := range rels {
			rv.Rows = append(rv.Rows, relationImages{Relation: rel, Before: rj.Rows[rel].Before, After: rj.Rows[rel].After})
		}
		v.Revert = rv
	}
	return v, nil
}

func (h *Handler) changePage(w http.ResponseWriter, r *http.Request) {
	v, err := h.changeView(r, r.PathValue("id"))
	if err != nil {
		h.failed(w, r, err)
		return
	}
	h.render(w, r, http.StatusOK, "change", v)
}

// revertForm records a revert of the change and sends the browser to the
// revert's page, where it is approved like any other change. A refusal is
// shown on the change's own page, with the keys of the rows in the way.
func (h *Handler) revertForm(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	only := r.PostFormValue("only_unchanged") != ""
	ctx, cancel := reqContext(r, decideTimeout)
	defer cancel()
	out, err := h.revert(ctx, id, reviewerOf(r.Context()).name, only)
	if err == nil && out.Change != nil {
		h.flash(r, safetext.Line(out.Message))
		http.Redirect(w, r, Prefix+"/changes/"+url.PathEscape(out.Change.ID), http.StatusSeeOther)
		return
	}
	if err == nil {
		err = errorf("revert of %s: recorded, but its change could not be read", id)
	}
	status, code := classify(err)
	if status >= 500 {
		h.log.Error("review page: revert failed", "change", id, "err", err)
	}
	v, verr := h.changeView(r, id)
	if verr != nil {
		h.failed(w, r, err)
		return
	}
	v.RevertError = revertError(code, err)
	if v.Revert != nil {
		v.Revert.OnlyUnchanged = only
	}
	h.render(w, r, status, "change", v)
}

// revertError is what the change page says about a refused revert. The
// keys hold the agent's and others' data: the template shows them through
// safetext like everything else.
func revertError(code string, err error) *revertErrorView {
	var conflict *review.RevertConflictError
	if !errors.As(err, &conflict) {
		return &revertErrorView{Code: code, Message: safetext.Line(err.Error())}
	}
	v := &revertErrorView{Code: code, Message: fmt.Sprintf(
		"%d row(s) changed since the change was committed, and a revert would overwrite them. "+
			"Tick \"only rows unchanged since\" to restore the others and leave these as they are.", conflict.Count)}
	rels := make([]string, 0, len(conflict.Keys))
	shown := 0
	for rel := range conflict.Keys {
		rels = append(rels, rel)
	}
	slices.Sort(rels)
	for _, rel := range rels {
		keys := conflict.Keys[rel]
		shown += len(keys)
		v.Tables = append(v.Tables, conflictKeys{Relation: rel, Keys: keys})
	}
	v.More = max(0, conflict.Count-shown)
	return v
}

// decided sends the browser back to the page it decided on, with what
// happened as the page's message.
func (h *Handler) decided(w http.ResponseWriter, r *http.Request, back string, out Outcome, err error) {
	if err != nil {
		_, code := classify(err)
		h.flash(r, "Refused ("+code+"): "+safetext.Line(err.Error()))
	} else {
		h.flash(r, safetext.Line(out.Message))
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

func (h *Handler) approveForm(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ctx, cancel := reqContext(r, decideTimeout)
	defer cancel()
	out, err := h.commit(ctx, id, reviewerOf(r.Context()).name, r.PostFormValue("expect"))
	h.decided(w, r, Prefix+"/changes/"+url.PathEscape(id), out, err)
}

func (h *Handler) rejectForm(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	if reason == "" {
		h.flash(r, "A rejection needs a reason: the agent and the audit log get it.")
		http.Redirect(w, r, Prefix+"/changes/"+url.PathEscape(id), http.StatusSeeOther)
		return
	}
	ctx, cancel := reqContext(r, decideTimeout)
	defer cancel()
	out, err := h.rollback(ctx, id, reviewerOf(r.Context()).name, reason)
	h.decided(w, r, Prefix+"/changes/"+url.PathEscape(id), out, err)
}

type branchesView struct {
	Live, Closed []*review.Branch
}

func (h *Handler) branchesPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := reqContext(r, readTimeout)
	defer cancel()
	bs, err := h.cfg.Store.Branches(ctx)
	if err != nil {
		h.failed(w, r, err)
		return
	}
	var v branchesView
	for _, b := range bs {
		if b.Status == review.BranchLive {
			v.Live = append(v.Live, b)
		} else {
			v.Closed = append(v.Closed, b)
		}
	}
	h.render(w, r, http.StatusOK, "branches", v)
}

type branchView struct {
	J        BranchJSON
	Changes  []*review.Change
	Waiting  int
	Approved bool
}

func (h *Handler) branchPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := reqContext(r, readTimeout)
	defer cancel()
	bj, changes, err := h.loadBranch(ctx, r.PathValue("id"))
	if err != nil {
		h.failed(w, r, err)
		return
	}
	v := branchView{J: bj, Changes: changes, Waiting: max(0, bj.Required-len(bj.Approvals))}
	me := reviewerOf(r.Context()).name
	for _, a := range bj.Approvals {
		v.Approved = v.Approved || a.Reviewer == me
	}
	h.render(w, r, http.StatusOK, "branch", v)
}

func (h *Handler) mergeForm(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ctx, cancel := reqContext(r, decideTimeout)
	defer cancel()
	out, err := h.merge(ctx, id, reviewerOf(r.Context()).name, r.PostFormValue("expect"))
	h.decided(w, r, Prefix+"/branches/"+url.PathEscape(id), out, err)
}

func (h *Handler) discardForm(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	if reason == "" {
		h.flash(r, "Discarding a branch needs a reason: the agent and the audit log get it.")
		http.Redirect(w, r, Prefix+"/branches/"+url.PathEscape(id), http.StatusSeeOther)
		return
	}
	ctx, cancel := reqContext(r, decideTimeout)
	defer cancel()
	out, err := h.discard(ctx, id, reviewerOf(r.Context()).name, reason)
	h.decided(w, r, Prefix+"/branches/"+url.PathEscape(id), out, err)
}

type auditView struct {
	F      auditFilter
	Since  string
	Until  string
	Events []AuditEvent
	Error  string
}

func (h *Handler) auditPage(w http.ResponseWriter, r *http.Request) {
	f, err := parseAuditFilter(r)
	v := auditView{F: f}
	if !f.Since.IsZero() {
		v.Since = f.Since.UTC().Format("2006-01-02T15:04")
	}
	if !f.Until.IsZero() {
		v.Until = f.Until.UTC().Format("2006-01-02T15:04")
	}
	if err != nil {
		v.Error = err.Error()
		h.render(w, r, http.StatusBadRequest, "audit", v)
		return
	}
	ctx, cancel := reqContext(r, readTimeout)
	defer cancel()
	if v.Events, err = h.auditEvents(ctx, f); err != nil {
		h.failed(w, r, err)
		return
	}
	h.render(w, r, http.StatusOK, "audit", v)
}

// failed renders a read that went wrong.
func (h *Handler) failed(w http.ResponseWriter, r *http.Request, err error) {
	status, code := classify(err)
	if status >= 500 {
		h.log.Error("review page: request failed", "path", r.URL.Path, "err", err)
	}
	h.renderError(w, r, status, fmt.Sprintf("%s: %s", code, safetext.Line(err.Error())))
}

// human renders a duration coarsely: 45s, 12m, 3h05m, 2d04h.
func human(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}
