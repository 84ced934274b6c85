package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/pgtest"
	"github.com/airlock-dev/airlock/review"
	"github.com/airlock-dev/airlock/reviewweb"
)

// The review page and its API, through the built binary (docs/architecture.md,
// Reviewers): reviewer tokens are not agent tokens and the other way
// round, decisions are recorded under the token's name, state changes need
// the page's own origin and CSRF token, and the two-person rule holds.
// Every refusal is checked against the database: unchanged.

const (
	aliceToken = "alice-review-0123456789abcdef0123456789abcdef"
	bobToken   = "bob-review-0123456789abcdef0123456789abcdef00"
	carolToken = "carol-review-0123456789abcdef0123456789abcdef0"
)

// reviewScopeFile writes a write scope named name over public.orders with
// write.approvals n.
func reviewScopeFile(t *testing.T, name string, approvals int) string {
	t.Helper()
	return writeScopeFile(t, fmt.Sprintf(`{
  "name": %q,
  "read": {"tables": {"public.orders": {}, "public.customers": {"columns": ["id", "name"]}}},
  "write": {
    "mode": "replay",
    "tables": ["public.orders"],
    "allow": ["update", "insert", "delete"],
    "ticket_pattern": "^[A-Z]+-[0-9]+$",
    "approvals": %d
  }
}`, name, approvals))
}

// startReview runs the service with the review page for alice, bob and
// carol (the review login is the test's superuser) and returns the MCP
// endpoint and the service's base URL.
func startReview(t *testing.T, dbURL, scope string, env []string, extra ...string) (endpoint, base string) {
	t.Helper()
	env = append([]string{
		"AIRLOCK_REVIEWER_TOKENS=alice:" + aliceToken + ",bob:" + bobToken + ",carol:" + carolToken,
		"AIRLOCK_REVIEW_DATABASE_URL=" + dbURL,
	}, env...)
	endpoint = startHTTPEnv(t, dbURL, scope, tokenA, "127.0.0.1:0", env, extra...)
	return endpoint, strings.TrimSuffix(endpoint, "/mcp")
}

// reviewAPI sends one request to the review API with a bearer token (none
// when token is empty) and returns the status and the decoded body.
func reviewAPI(t *testing.T, method, u, token string, body any, header ...string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1]
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	if out == nil {
		out = map[string]any{"raw": string(b)}
	}
	return resp.StatusCode, out
}

func errCode(body map[string]any) string {
	if e, ok := body["error"].(map[string]any); ok {
		s, _ := e["code"].(string)
		return s
	}
	return ""
}

// ordersState is the part of the database a change over orders touches,
// with the change's status: what every refusal must leave as it was.
func ordersState(t *testing.T, dbURL, id string) string {
	t.Helper()
	var s string
	err := pgtest.Connect(t, dbURL).QueryRow(t.Context(), `SELECT
		(SELECT string_agg(id || ':' || status, ',' ORDER BY id) FROM orders) || '|' ||
		(SELECT status || ':' || coalesce(reviewer, '') FROM airlock.changes WHERE id = $1)`, id).Scan(&s)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestReviewAPI(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDatabase(t)
	scope := reviewScopeFile(t, "rv_api", 1)
	endpoint, base := startReview(t, dbURL, scope, nil)
	agent := httpClient(t, endpoint, tokenA)
	id := applyChange(t, agent, "OPS-101", "UPDATE orders SET status = 'refunded' WHERE id BETWEEN 1 AND 3")
	api := base + "/review/api/"

	t.Run("tokens are kept apart", func(t *testing.T) {
		before := ordersState(t, dbURL, id)
		for _, p := range []string{"changes", "changes/" + id, "branches", "audit", "whoami"} {
			if st, body := reviewAPI(t, "GET", api+p, tokenA, nil); st != 401 || errCode(body) != "agent_token" {
				t.Errorf("agent token on %s: %d %v", p, st, body)
			}
		}
		if st, body := reviewAPI(t, "POST", api+"changes/"+id+"/commit", tokenA, map[string]string{}); st != 401 {
			t.Errorf("agent token commits: %d %v", st, body)
		}
		for _, p := range []string{"/review/", "/review/changes/" + id, "/review/audit"} {
			if st, _ := reviewAPI(t, "GET", base+p, tokenA, nil); st != 401 {
				t.Errorf("agent token on page %s: %d", p, st)
			}
		}
		if st, _ := reviewAPI(t, "GET", api+"changes", "", nil); st != 401 {
			t.Errorf("no token: %d", st)
		}
		if st, _ := reviewAPI(t, "GET", api+"changes", "wrong-"+aliceToken, nil); st != 401 {
			t.Errorf("wrong token: %d", st)
		}
		// A reviewer token opens nothing outside /review.
		st, _, _ := post(t, endpoint, map[string]string{"Authorization": "Bearer " + aliceToken},
			`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`)
		if st != 401 {
			t.Errorf("reviewer token on /mcp: %d", st)
		}
		if st, _ := reviewAPI(t, "GET", base+"/review/", "", nil); st != http.StatusSeeOther {
			t.Errorf("unauthenticated page: %d, want a redirect to sign in", st)
		}
		if after := ordersState(t, dbURL, id); after != before {
			t.Fatalf("refused requests changed the database:\n%s\n%s", before, after)
		}
	})

	var hash string
	t.Run("list and show", func(t *testing.T) {
		st, body := reviewAPI(t, "GET", api+"changes", aliceToken, nil)
		if st != 200 {
			t.Fatalf("changes: %d %v", st, body)
		}
		b, _ := json.Marshal(body)
		var list reviewweb.ChangesJSON
		if err := json.Unmarshal(b, &list); err != nil || len(list.Changes) != 1 || list.Changes[0].Change.ID != id {
			t.Fatalf("changes: %v %s", err, b)
		}
		c, err := review.FromDoc(list.Changes[0].Change)
		if err != nil {
			t.Fatal(err)
		}
		hash = c.ApprovalHash()
		if c.Ticket != "OPS-101" || list.Changes[0].Change.RowsAffected != 3 || list.Changes[0].Required != 1 {
			t.Fatalf("change: %+v", list.Changes[0])
		}
		if st, body := reviewAPI(t, "GET", api+"changes/not-a-change", aliceToken, nil); st != 404 || errCode(body) != "not_found" {
			t.Errorf("unknown change: %d %v", st, body)
		}
		if st, body := reviewAPI(t, "GET", api+"nothing/here", aliceToken, nil); st != 404 || errCode(body) != "not_found" {
			t.Errorf("unknown path: %d %v", st, body)
		}
	})

	t.Run("refusals leave everything as it was", func(t *testing.T) {
		before := ordersState(t, dbURL, id)
		cases := []struct {
			name   string
			body   any
			header []string
			status int
			code   string
		}{
			{"cross-origin", map[string]string{}, []string{"Origin", "https://evil.example"}, 403, "cross_origin"},
			{"cross-site fetch", map[string]string{}, []string{"Sec-Fetch-Site", "cross-site"}, 403, "cross_origin"},
			{"same-site fetch", map[string]string{}, []string{"Sec-Fetch-Site", "same-site"}, 403, "cross_origin"},
			{"opaque origin", map[string]string{}, []string{"Origin", "null"}, 403, "cross_origin"},
			{"look-alike origin", map[string]string{}, []string{"Origin", base + ".evil.example"}, 403, "cross_origin"},
			{"other scheme", map[string]string{}, []string{"Origin", strings.Replace(base, "http://", "https://", 1)}, 403, "cross_origin"},
			{"rebound host", map[string]string{}, []string{"Host", "evil.example:80", "Origin", "http://evil.example:80"}, 421, "wrong_host"},
			{"wrong approval hash", map[string]string{"expect": strings.Repeat("0", 64)}, nil, 409, "approval_mismatch"},
			{"short expect", map[string]string{"expect": hash[:8]}, nil, 409, "approval_mismatch"},
			{"unknown field", map[string]any{"reviewer": "mallory"}, nil, 400, "bad_request"},
			{"not an object", []int{1}, nil, 400, "bad_request"},
		}
		for _, tc := range cases {
			st, body := reviewAPI(t, "POST", api+"changes/"+id+"/commit", aliceToken, tc.body, tc.header...)
			if st != tc.status || errCode(body) != tc.code {
				t.Errorf("%s: %d %v, want %d %s", tc.name, st, body, tc.status, tc.code)
			}
		}
		if after := ordersState(t, dbURL, id); after != before {
			t.Fatalf("refused requests changed the database:\n%s\n%s", before, after)
		}
	})

	t.Run("commit under the token's name", func(t *testing.T) {
		st, body := reviewAPI(t, "POST", api+"changes/"+id+"/commit", aliceToken, map[string]string{"expect": hash})
		if st != 200 || body["status"] != "committed" {
			t.Fatalf("commit: %d %v", st, body)
		}
		if n := count(t, dbURL, "SELECT count(*) FROM orders WHERE status = 'refunded' AND id BETWEEN 1 AND 3"); n != 3 {
			t.Fatalf("committed rows: %d", n)
		}
		if n := count(t, dbURL, "SELECT count(*) FROM airlock.changes WHERE id = '"+id+"' AND reviewer = 'alice' AND status = 'committed'"); n != 1 {
			t.Fatal("the decision is not recorded under alice")
		}
		if st, body := reviewAPI(t, "POST", api+"changes/"+id+"/commit", bobToken, nil); st != 409 || errCode(body) != "not_pending" {
			t.Errorf("second commit: %d %v", st, body)
		}
	})

	t.Run("rollback with a reason", func(t *testing.T) {
		id2 := applyChange(t, agent, "OPS-102", "DELETE FROM orders WHERE id = 40")
		st, body := reviewAPI(t, "POST", api+"changes/"+id2+"/rollback", bobToken, map[string]string{"reason": "not this one"})
		if st != 200 || body["status"] != "rolled_back" {
			t.Fatalf("rollback: %d %v", st, body)
		}
		if n := count(t, dbURL, "SELECT count(*) FROM orders WHERE id = 40"); n != 1 {
			t.Fatal("a rolled back delete deleted")
		}
		if n := count(t, dbURL, "SELECT count(*) FROM airlock.changes WHERE id = '"+id2+"' AND reviewer = 'bob' AND reason = 'not this one'"); n != 1 {
			t.Fatal("the rejection is not recorded under bob with its reason")
		}
		if s := changeStatus(t, agent, id2); s != "rolled_back" {
			t.Fatalf("the agent sees %s", s)
		}
	})

	t.Run("audit", func(t *testing.T) {
		// The audit log is written in the background.
		var (
			st   int
			body map[string]any
			evs  []any
		)
		eventually(10*time.Second, func() bool {
			st, body = reviewAPI(t, "GET", api+"audit?tool=commit&decision=reviewed", aliceToken, nil)
			evs, _ = body["events"].([]any)
			return len(evs) > 0
		})
		if st != 200 || len(evs) == 0 {
			t.Fatalf("audit: %d %v", st, body)
		}
		for _, e := range evs {
			if m := e.(map[string]any); m["tool"] != "commit" || m["decision"] != "reviewed" {
				t.Fatalf("filter not applied: %v", m)
			}
		}
		if st, _ := reviewAPI(t, "GET", api+"audit?since=yesterday", aliceToken, nil); st != 400 {
			t.Errorf("bad since: %d", st)
		}
	})
}

// sessionClient signs in to the review page as a browser would and
// returns the client holding the session cookie.
func sessionClient(t *testing.T, base, token string) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.PostForm(base+"/review/login", url.Values{"token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in: %d", resp.StatusCode)
	}
	var found bool
	for _, ck := range resp.Cookies() {
		if ck.Name == "airlock_review" {
			found = true
			if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/review" {
				t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/review", ck)
			}
		}
	}
	if !found {
		t.Fatal("no session cookie")
	}
	return c
}

var csrfField = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

func TestReviewPageForms(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDatabase(t)
	scope := reviewScopeFile(t, "rv_forms", 1)
	endpoint, base := startReview(t, dbURL, scope, nil)
	agent := httpClient(t, endpoint, tokenA)
	id := applyChange(t, agent, "OPS-111", "UPDATE orders SET status = 'cancelled' WHERE id = 7")
	c := sessionClient(t, base, bobToken)

	resp, err := c.Get(base + "/review/changes/" + id)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(page, []byte("OPS-111")) {
		t.Fatalf("change page: %d\n%s", resp.StatusCode, page)
	}
	for _, h := range []string{"Content-Security-Policy", "X-Frame-Options"} {
		if resp.Header.Get(h) == "" {
			t.Errorf("no %s header", h)
		}
	}
	m := csrfField.FindSubmatch(page)
	if m == nil {
		t.Fatal("no CSRF token on the change page")
	}
	csrf := string(m[1])
	hash := regexp.MustCompile(`name="expect" value="([0-9a-f]{64})"`).FindSubmatch(page)
	if hash == nil {
		t.Fatal("no approval hash in the approve form")
	}

	before := ordersState(t, dbURL, id)
	form := func(vals url.Values, header ...string) int {
		req, _ := http.NewRequest("POST", base+"/review/changes/"+id+"/approve", strings.NewReader(vals.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := form(url.Values{"expect": {string(hash[1])}}); st != 403 {
		t.Errorf("no CSRF token: %d", st)
	}
	if st := form(url.Values{"expect": {string(hash[1])}, "csrf": {strings.Repeat("0", 64)}}); st != 403 {
		t.Errorf("wrong CSRF token: %d", st)
	}
	if st := form(url.Values{"expect": {string(hash[1])}, "csrf": {csrf}}, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"); st != 403 {
		t.Errorf("cross-site form post with the right token: %d", st)
	}
	// Another reviewer's CSRF token is no token for this session.
	other := sessionClient(t, base, carolToken)
	oresp, err := other.Get(base + "/review/changes/" + id)
	if err != nil {
		t.Fatal(err)
	}
	opage, _ := io.ReadAll(oresp.Body)
	oresp.Body.Close()
	if m := csrfField.FindSubmatch(opage); m == nil || string(m[1]) == csrf {
		t.Fatal("two sessions share a CSRF token")
	} else if st := form(url.Values{"expect": {string(hash[1])}, "csrf": {string(m[1])}}); st != 403 {
		t.Errorf("carol's CSRF token in bob's session: %d", st)
	}
	// Signing in is refused from another origin (login CSRF), and a made-up
	// cookie is no session.
	req, _ := http.NewRequest("POST", base+"/review/login", strings.NewReader(url.Values{"token": {aliceToken}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	if resp, err := http.DefaultTransport.RoundTrip(req); err != nil || resp.StatusCode != 403 || len(resp.Cookies()) != 0 {
		t.Errorf("cross-origin sign-in: %v %v", err, resp)
	} else {
		resp.Body.Close()
	}
	req, _ = http.NewRequest("GET", base+"/review/", nil)
	req.AddCookie(&http.Cookie{Name: "airlock_review", Value: strings.Repeat("a", 64)})
	if resp, err := http.DefaultTransport.RoundTrip(req); err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Errorf("made-up cookie: %v %v", err, resp)
	} else {
		resp.Body.Close()
	}
	if after := ordersState(t, dbURL, id); after != before {
		t.Fatalf("refused form posts changed the database:\n%s\n%s", before, after)
	}
	if st := form(url.Values{"expect": {string(hash[1])}, "csrf": {csrf}}, "Origin", base); st != http.StatusSeeOther {
		t.Fatalf("approve: %d", st)
	}
	if n := count(t, dbURL, "SELECT count(*) FROM orders WHERE id = 7 AND status = 'cancelled'"); n != 1 {
		t.Fatal("the approved change did not commit")
	}
	if n := count(t, dbURL, "SELECT count(*) FROM airlock.changes WHERE id = '"+id+"' AND reviewer = 'bob'"); n != 1 {
		t.Fatal("not recorded under bob")
	}
	// Signed out, the cookie opens nothing.
	req, _ = http.NewRequest("POST", base+"/review/logout", strings.NewReader(url.Values{"csrf": {csrf}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, err := c.Do(req); err == nil {
		resp.Body.Close()
	}
	u, _ := url.Parse(base + "/review/")
	if len(c.Jar.Cookies(u)) != 0 {
		t.Error("sign out left the session cookie")
	}
	if resp, err := c.Get(base + "/review/"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther {
			t.Errorf("after sign out: %d", resp.StatusCode)
		}
	}
}

func TestTwoPersonRule(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDatabase(t)
	scope := reviewScopeFile(t, "rv_two", 2)
	endpoint, base := startReview(t, dbURL, scope, nil)
	agent := httpClient(t, endpoint, tokenA)
	api := base + "/review/api/"

	t.Run("two distinct reviewers commit", func(t *testing.T) {
		id := applyChange(t, agent, "OPS-201", "UPDATE orders SET status = 'refunded' WHERE id = 11")
		before := ordersState(t, dbURL, id)
		st, body := reviewAPI(t, "POST", api+"changes/"+id+"/commit", aliceToken, nil)
		if st != 200 || body["status"] != "approved" {
			t.Fatalf("first approval: %d %v", st, body)
		}
		if after := ordersState(t, dbURL, id); after != before {
			t.Fatalf("one approval of two changed the database:\n%s\n%s", before, after)
		}
		if st, body := reviewAPI(t, "POST", api+"changes/"+id+"/commit", aliceToken, nil); st != 409 || errCode(body) != "already_approved" {
			t.Fatalf("alice again: %d %v", st, body)
		}
		if after := ordersState(t, dbURL, id); after != before {
			t.Fatal("a repeated approval changed the database")
		}
		// The second reviewer decides from the CLI, through the API.
		out, code := reviewCLI(t, bobToken, "commit", id, "--server", base)
		if code != 0 || !strings.HasPrefix(out, "committed:") || !strings.Contains(out, "alice, bob") {
			t.Fatalf("bob's approval (%d): %s", code, out)
		}
		if n := count(t, dbURL, "SELECT count(*) FROM orders WHERE id = 11 AND status = 'refunded'"); n != 1 {
			t.Fatal("two approvals did not commit")
		}
		if n := count(t, dbURL, "SELECT count(DISTINCT reviewer) FROM airlock.approvals WHERE subject = '"+id+"'"); n != 2 {
			t.Fatalf("%d approvals recorded, want 2", n)
		}
	})

	t.Run("one rejection ends it", func(t *testing.T) {
		id := applyChange(t, agent, "OPS-202", "DELETE FROM orders WHERE id = 12")
		if st, body := reviewAPI(t, "POST", api+"changes/"+id+"/commit", aliceToken, nil); st != 200 || body["status"] != "approved" {
			t.Fatalf("alice: %d %v", st, body)
		}
		if st, body := reviewAPI(t, "POST", api+"changes/"+id+"/rollback", carolToken, map[string]string{"reason": "no"}); st != 200 {
			t.Fatalf("carol rejects: %d %v", st, body)
		}
		before := ordersState(t, dbURL, id)
		if st, body := reviewAPI(t, "POST", api+"changes/"+id+"/commit", bobToken, nil); st != 409 || errCode(body) != "not_pending" {
			t.Fatalf("bob after a rejection: %d %v", st, body)
		}
		if after := ordersState(t, dbURL, id); after != before || count(t, dbURL, "SELECT count(*) FROM orders WHERE id = 12") != 1 {
			t.Fatal("an approval after a rejection changed the database")
		}
	})

	t.Run("show counts approvals", func(t *testing.T) {
		id := applyChange(t, agent, "OPS-203", "UPDATE orders SET status = 'paid' WHERE id = 13")
		if st, _ := reviewAPI(t, "POST", api+"changes/"+id+"/commit", bobToken, nil); st != 200 {
			t.Fatal("bob")
		}
		out, code := reviewCLI(t, aliceToken, "show", id, "--server", base)
		if code != 0 || !strings.Contains(out, "Approvals: 1 of 2") || !strings.Contains(out, "bob at") {
			t.Fatalf("show --server (%d):\n%s", code, out)
		}
		direct, code := reviewer(t, dbURL, "show", id)
		if code != 0 || !strings.Contains(direct, "Approvals: 1 of 2") {
			t.Fatalf("show (%d):\n%s", code, direct)
		}
		// The direct CLI counts as one more reviewer.
		out, code = reviewer(t, dbURL, "commit", id, "--reviewer", "dave")
		if code != 0 || !strings.HasPrefix(out, "committed:") {
			t.Fatalf("dave (%d): %s", code, out)
		}
	})
}

// reviewCLI runs the binary as a reviewer with a token and no database URL.
func reviewCLI(t *testing.T, token string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "AIRLOCK_") {
			env = append(env, e)
		}
	}
	if token != "" {
		env = append(env, "AIRLOCK_REVIEWER_TOKEN="+token)
	}
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

func TestReviewCLIServer(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDatabase(t)
	scope := reviewScopeFile(t, "rv_cli", 1)
	endpoint, base := startReview(t, dbURL, scope, nil)
	agent := httpClient(t, endpoint, tokenA)
	id := applyChange(t, agent, "OPS-301", "UPDATE orders SET status = 'shipped' WHERE id = 21")
	id2 := applyChange(t, agent, "OPS-302", "UPDATE orders SET status = 'shipped' WHERE id = 22")

	out, code := reviewCLI(t, aliceToken, "pending", "--server", base)
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "OPS-302") {
		t.Fatalf("pending --server (%d):\n%s", code, out)
	}
	out, code = reviewCLI(t, aliceToken, "pending", "--server", base, "--json")
	var list []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 2 {
		t.Fatalf("pending --server --json (%d):\n%s", code, out)
	}
	show, code := reviewCLI(t, aliceToken, "show", id, "--server", base)
	if code != 0 || !strings.Contains(show, "approval:") || !strings.Contains(show, "UPDATE orders") {
		t.Fatalf("show --server (%d):\n%s", code, show)
	}
	// The same change shows the same through the database.
	direct, _ := reviewer(t, dbURL, "show", id)
	if stripAges(direct) != stripAges(show) {
		t.Errorf("show --server differs from show:\n%s\n---\n%s", show, direct)
	}

	before := ordersState(t, dbURL, id)
	for _, tc := range []struct {
		token string
		args  []string
		want  string
	}{
		{"", []string{"commit", id, "--server", base}, "AIRLOCK_REVIEWER_TOKEN"},
		{tokenA, []string{"commit", id, "--server", base}, "agent token"},
		{aliceToken, []string{"commit", id, "--server", base, "--reviewer", "mallory"}, "not taken with --server"},
		{aliceToken, []string{"commit", id, "--server", base, "--expect", strings.Repeat("a", 16)}, "refused:"},
		{aliceToken, []string{"commit", id, "--server", "ftp://x"}, "--server"},
	} {
		out, code := reviewCLI(t, tc.token, tc.args...)
		if code == 0 || !strings.Contains(out, tc.want) {
			t.Errorf("%v (%d), want %q:\n%s", tc.args, code, tc.want, out)
		}
	}
	if after := ordersState(t, dbURL, id); after != before {
		t.Fatalf("refused commands changed the database:\n%s\n%s", before, after)
	}

	out, code = reviewCLI(t, aliceToken, "commit", id, "--server", base)
	if code != 0 || !strings.HasPrefix(out, "committed:") {
		t.Fatalf("commit --server (%d): %s", code, out)
	}
	out, code = reviewCLI(t, bobToken, "rollback", id2, "--server", base, "--reason", "later")
	if code != 0 || !strings.HasPrefix(out, "rolled back:") {
		t.Fatalf("rollback --server (%d): %s", code, out)
	}
	if n := count(t, dbURL, "SELECT count(*) FROM airlock.changes WHERE (id = '"+id+"' AND reviewer = 'alice' AND status = 'committed') OR (id = '"+id2+"' AND reviewer = 'bob' AND status = 'rolled_back')"); n != 2 {
		t.Fatal("decisions not recorded under the tokens' names")
	}
}

var agesPattern = regexp.MustCompile(`\(\d+[smhd][0-9hm]* ago\)|\(in \d+[smhd][0-9hm]*\)`)

func stripAges(s string) string { return agesPattern.ReplaceAllString(s, "") }
