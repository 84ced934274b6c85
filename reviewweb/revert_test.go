package reviewweb

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/migrate"
	"github.com/airlock-dev/airlock/review"
)

// The review page's revert without a database: refusals that never reach
// the store, the error mapping, and what the change page renders of a
// revert (hostile text escaped). The revert itself, against PostgreSQL,
// is tested through the binary in e2e (TestReviewRevert*).

// testHandler is a review page with no database: every request these
// tests send must be refused before the store is asked anything (a nil
// store would panic).
func testHandler(t *testing.T, agentToken string, reviewers ...string) *Handler {
	t.Helper()
	rs, err := ParseReviewers(strings.Join(reviewers, ","))
	if err != nil {
		t.Fatal(err)
	}
	h := &Handler{
		cfg: Config{Reviewers: rs, AgentToken: TokenSet([]string{agentToken}), Now: time.Now,
			SessionTTL: time.Hour, Refresh: 5 * time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
		mux: http.NewServeMux(), sessions: newSessions(time.Hour), log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	h.routes()
	return h
}

func TestReviewRevertRefusedBeforeTheStore(t *testing.T) {
	const (
		agent = "agent-0123456789abcdef0123456789abcdef"
		alice = "alice-0123456789abcdef0123456789abcdef"
	)
	h := testHandler(t, agent, "alice:"+alice)
	id := "9b2f4c1e-0000-4000-8000-000000000001"
	sess, _ := h.sessions.create("alice", time.Now())
	_, s := h.sessions.create("alice", time.Now())
	tests := []struct {
		name   string
		path   string
		body   string
		header []string
		status int
		code   string
	}{
		{"agent token", "/review/api/changes/" + id + "/revert", `{}`, []string{"Authorization", "Bearer " + agent}, 401, "agent_token"},
		{"agent token on the form", "/review/changes/" + id + "/revert", "", []string{"Authorization", "Bearer " + agent}, 401, "agent_token"},
		{"no token", "/review/api/changes/" + id + "/revert", `{}`, nil, 401, "unauthorized"},
		{"wrong token", "/review/api/changes/" + id + "/revert", `{}`, []string{"Authorization", "Bearer x" + alice}, 401, "unauthorized"},
		{"cross-origin", "/review/api/changes/" + id + "/revert", `{}`, []string{"Authorization", "Bearer " + alice, "Origin", "https://evil.example"}, 403, "cross_origin"},
		{"cross-site", "/review/api/changes/" + id + "/revert", `{}`, []string{"Authorization", "Bearer " + alice, "Sec-Fetch-Site", "cross-site"}, 403, "cross_origin"},
		{"cookie without CSRF", "/review/api/changes/" + id + "/revert", `{}`, []string{"Cookie", cookieName + "=" + sess}, 403, "csrf"},
		{"another session's CSRF", "/review/api/changes/" + id + "/revert", `{}`, []string{"Cookie", cookieName + "=" + sess, "X-CSRF-Token", s.csrf}, 403, "csrf"},
		{"unknown field", "/review/api/changes/" + id + "/revert", `{"reviewer": "mallory"}`, []string{"Authorization", "Bearer " + alice}, 400, "bad_request"},
		{"not a bool", "/review/api/changes/" + id + "/revert", `{"only_unchanged": "yes"}`, []string{"Authorization", "Bearer " + alice}, 400, "bad_request"},
		{"not an object", "/review/api/changes/" + id + "/revert", `[true]`, []string{"Authorization", "Bearer " + alice}, 400, "bad_request"},
		{"GET", "/review/api/changes/" + id + "/revert", "", []string{"Authorization", "Bearer " + alice}, 404, "not_found"},
	}
	for _, tt := range tests {
		method := "POST"
		if tt.name == "GET" {
			method = "GET"
		}
		r := httptest.NewRequest(method, "http://127.0.0.1:8765"+tt.path, strings.NewReader(tt.body))
		for i := 0; i+1 < len(tt.header); i += 2 {
			r.Header.Set(tt.header[i], tt.header[i+1])
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tt.status {
			t.Errorf("%s: %d %s, want %d", tt.name, w.Code, w.Body, tt.status)
			continue
		}
		if tt.code == "" || !strings.HasPrefix(tt.path, "/review/api/") && tt.code != "agent_token" {
			continue
		}
		var e ErrorJSON
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error.Code != tt.code {
			t.Errorf("%s: %s, want code %s", tt.name, w.Body, tt.code)
		}
	}
}

func TestReviewRevertErrors(t *testing.T) {
	conflict := &review.RevertConflictError{Change: "c1", Count: 2, Keys: map[string][]string{"public.orders": {`{"id": 3}`, `{"id": 7}`}}}
	tests := []struct {
		err    error
		status int
		code   string
	}{
		{conflict, 409, "revert_conflict"},
		{fmt.Errorf("revert: %w", conflict), 409, "revert_conflict"},
		{&review.NotRevertibleError{Change: "c1", Reason: "its capture expired"}, 409, "not_revertible"},
		{&notCommittedError{id: "c1", status: review.StatusPending}, 409, "not_committed"},
		{fmt.Errorf("x: %w", review.ErrNotFound), 404, "not_found"},
	}
	for _, tt := range tests {
		if st, code := classify(tt.err); st != tt.status || code != tt.code {
			t.Errorf("classify(%v) = %d %s, want %d %s", tt.err, st, code, tt.status, tt.code)
		}
	}
	w := httptest.NewRecorder()
	answer(w, Outcome{}, conflict)
	var e ErrorJSON
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || w.Code != 409 || e.Error.Code != "revert_conflict" ||
		e.Error.Count != 2 || len(e.Error.Keys["public.orders"]) != 2 || !strings.Contains(e.Error.Message, `{"id": 7}`) {
		t.Errorf("a conflict answers %d %s", w.Code, w.Body)
	}
	if msg := (&notCommittedError{id: "c1", status: review.StatusRolledBack}).Error(); !strings.Contains(msg, "rolled_back, not committed") {
		t.Errorf("not committed: %s", msg)
	}
}

func TestReviewRevertibilityJSON(t *testing.T) {
	until := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		r        *review.Revertibility
		err      error
		possible bool
		reason   string
	}{
		{&review.Revertibility{Captured: true, Until: until, Rows: map[string][2]int64{"public.orders": {3, 3}}}, nil, true, ""},
		{&review.Revertibility{}, nil, false, "nothing was captured"},
		{&review.Revertibility{Captured: true, Until: until, Purged: true}, nil, false, "expired on 2030-01-02T03:04:05Z"},
		{&review.Revertibility{Captured: true, Until: until, Irreversible: "statement 1: airlock revert cannot undo a drop table statement"}, nil, false, "drop table"},
		{nil, errors.New("permission denied"), false, "could not read the capture: permission denied"},
	}
	for _, tt := range tests {
		got := revertibilityJSON(tt.r, tt.err)
		if got.Possible != tt.possible || !strings.Contains(got.Reason, tt.reason) || (tt.possible && got.Reason != "") {
			t.Errorf("revertibilityJSON(%+v, %v) = %+v", tt.r, tt.err, got)
		}
		if tt.r != nil {
			back := got.Revertibility()
			if back.Captured != tt.r.Captured || !back.Until.Equal(tt.r.Until) || back.Purged != tt.r.Purged || back.Irreversible != tt.r.Irreversible || len(back.Rows) != len(tt.r.Rows) {
				t.Errorf("round trip of %+v: %+v", tt.r, back)
			}
		}
	}
}

const hostile = "\u202eevil\u202c\u200b<script>alert(1)</script>"

// TestReviewChangePageRevert renders the change page's revert parts: the form
// only when a revert is possible and none is live, the reason otherwise,
// a revert's plan, and a refusal's keys, with the agent's text escaped.
func TestReviewChangePageRevert(t *testing.T) {
	now := time.Now()
	orig := &review.Change{ID: "11111111-1111-4111-8111-111111111111", Ticket: "OPS-1", Summary: "refund " + hostile,
		SQL: "UPDATE orders SET status = 'refunded'", Scope: "s", Mode: review.ModeReplay, Status: review.StatusCommitted,
		CreatedAt: now.Add(-time.Hour), ExpiresAt: now.Add(time.Hour), Reviewer: "bob", DecidedAt: now,
		Report: &migrate.Report{Risk: "low"}}
	render := func(v changeView) string {
		t.Helper()
		var buf bytes.Buffer
		if err := templates.ExecuteTemplate(&buf, "change", view{Title: "Change", Nav: "change", Reviewer: "alice", CSRF: "c5rf", Body: v}); err != nil {
			t.Fatal(err)
		}
		return buf.String()
	}
	base := func(c *review.Change) changeView {
		d, err := c.Doc()
		if err != nil {
			t.Fatal(err)
		}
		return changeView{C: c, J: ChangeJSON{Change: d, Required: 1}, Hash: d.ApprovalHash}
	}
	noRaw := func(name, page string) {
		t.Helper()
		if strings.ContainsAny(page, "\u202e\u202c\u200b") || strings.Contains(page, "<script>alert") {
			t.Errorf("%s: hostile text rendered as itself:\n%s", name, page)
		}
	}

	v := base(orig)
	v.Revert = &revertView{Possible: true, Offer: true, Until: now.Add(48 * time.Hour), In: "2d00h",
		Rows: []relationImages{{Relation: "public.orders", Before: 3, After: 3}}}
	page := render(v)
	for _, want := range []string{`form id="revert" method="post" action="/review/changes/` + orig.ID + `/revert"`,
		`name="csrf" value="c5rf"`, `name="only_unchanged"`, `id="revert-button"`, "Revert possible until", "(in 2d00h)"} {
		if !strings.Contains(page, want) {
			t.Errorf("offered revert: the page lacks %q", want)
		}
	}
	noRaw("offered revert", page)

	v.Revert = &revertView{Reason: "its capture expired on 2030-01-01T00:00:00Z"}
	page = render(v)
	if strings.Contains(page, `id="revert-button"`) || !strings.Contains(page, "Revert: not possible; its capture expired") {
		t.Errorf("not revertible:\n%s", page)
	}

	live := changeRef("22222222-2222-4222-8222-222222222222")
	live.Status = review.StatusPending
	v.Revert = &revertView{Possible: true, Live: &live, Until: now.Add(time.Hour)}
	v.J.RevertedBy = []ChangeRef{live}
	page = render(v)
	if strings.Contains(page, `id="revert-button"`) || !strings.Contains(page, "A revert of this change is pending") ||
		!strings.Contains(page, `id="reverted-by"`) || !strings.Contains(page, `href="/review/changes/`+live.ID+`"`) {
		t.Errorf("with a pending revert:\n%s", page)
	}

	// A refused revert: the keys hold others' data.
	v = base(orig)
	v.Revert = &revertView{Possible: true, Offer: true, Until: now.Add(time.Hour), OnlyUnchanged: true}
	v.RevertError = revertError("revert_conflict", &review.RevertConflictError{Change: orig.ID, Count: 25,
		Keys: map[string][]string{"public.tags": {`{"name": "` + hostile + `"}`}, "public.orders": {`{"id": 3}`}}})
	page = render(v)
	for _, want := range []string{`id="revert-error"`, "revert_conflict", "25 row(s) changed since", `\u{202E}evil\u{202C}\u{200B}`,
		"&lt;script&gt;alert(1)&lt;/script&gt;", "and 23 more row(s)", `id="only-unchanged" name="only_unchanged" value="1" checked`} {
		if !strings.Contains(page, want) {
			t.Errorf("refused revert: the page lacks %q", want)
		}
	}
	if strings.Index(page, "public.orders") > strings.Index(page, "public.tags") {
		t.Error("the conflicting tables are not in order")
	}
	noRaw("refused revert", page)

	// A revert change: what it reverts, what it restores, the DDL.
	rev := &review.Change{ID: "33333333-3333-4333-8333-333333333333", Ticket: "OPS-1", Summary: "Revert: refund " + hostile,
		SQL: "-- airlock revert", Scope: "s", Mode: review.ModeReplay, Status: review.StatusPending, Reverts: orig.ID,
		CreatedAt: now, ExpiresAt: now.Add(time.Hour), Report: &migrate.Report{Risk: "high"},
		Revert: &review.RevertPlan{Change: orig.ID, OnlyUnchanged: true, DDL: []string{`DROP INDEX public."` + hostile + `"`},
			Tables: []review.RevertTable{{Relation: "public.orders", PutBack: 1, Restored: 2, Removed: 3, Skipped: []string{`{"id": "` + hostile + `"}`}}}}}
	v = base(rev)
	v.Open = true
	page = render(v)
	for _, want := range []string{`id="reverts"`, `Revert of change <a id="reverts-link" href="/review/changes/` + orig.ID + `">`,
		`id="revert-plan"`, `<td class="num">1</td><td class="num">2</td><td class="num">3</td>`, `id="revert-ddl"`,
		`DROP INDEX public.&#34;\u{202E}evil`, "only rows unchanged since", `id="approve-button"`} {
		if !strings.Contains(page, want) {
			t.Errorf("revert change: the page lacks %q", want)
		}
	}
	if strings.Contains(page, `id="revert-section"`) {
		t.Error("a pending revert offers to be reverted")
	}
	noRaw("revert change", page)
}
