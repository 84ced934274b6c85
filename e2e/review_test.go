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

	"github.com/mark3labs/mcp-go/client"

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
		id2 := applyChange(t, agent, "OPS-102", "DELETE FROM orders WHERE id = 3040")
		st, body := reviewAPI(t, "POST", api+"changes/"+id2+"/rollback", bobToken, map[string]string{"reason": "not this one"})
		if st != 200 || body["status"] != "rolled_back" {
			t.Fatalf("rollback: %d %v", st, body)
		}
		if n := count(t, dbURL, "SELECT count(*) FROM orders WHERE id = 3040"); n != 1 {
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
		id := applyChange(t, agent, "OPS-202", "DELETE FROM orders WHERE id = 3012")
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
		if after := ordersState(t, dbURL, id); after != before || count(t, dbURL, "SELECT count(*) FROM orders WHERE id = 3012") != 1 {
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

// The review page's revert (docs/architecture.md, Undo): a reviewer turns
// a committed change into a pending revert through the API, the CLI's
// --server or the page's form, and a reviewer commits it like any other
// change; the database ends as it was before the change. Every refusal
// leaves the database, and airlock.changes, as they were.

// revertedChange applies and commits (as bob, through the API) a change
// over orders 1 to 5 and a new order 90001, with write.undo on (the
// default), and returns the database's fingerprint before it and its id.
func revertedChange(t *testing.T, dbURL, base string, agent *client.Client, ticket string) (pgtest.Snapshot, string) {
	t.Helper()
	before := pgtest.Fingerprint(t, dbURL).DatabaseOnly()
	id := applyChange(t, agent, ticket, "UPDATE orders SET status = 'refunded' WHERE id BETWEEN 1 AND 5; "+
		"INSERT INTO orders (id, customer_id, status, total, created_at) SELECT id + 90000, customer_id, 'paid', 5, created_at FROM orders WHERE id = 1")
	if st, body := reviewAPI(t, "POST", base+"/review/api/changes/"+id+"/commit", bobToken, nil); st != 200 || body["status"] != "committed" {
		t.Fatalf("commit %s: %d %v", id, st, body)
	}
	if d := before.Diff(pgtest.Fingerprint(t, dbURL).DatabaseOnly()); d == "" {
		t.Fatal("the committed change did not reach the database")
	}
	return before, id
}

// changeJSON reads GET changes/{id} as reviewer token.
func changeJSON(t *testing.T, base, token, id string) reviewweb.ChangeJSON {
	t.Helper()
	st, body := reviewAPI(t, "GET", base+"/review/api/changes/"+id, token, nil)
	if st != 200 {
		t.Fatalf("GET changes/%s: %d %v", id, st, body)
	}
	b, _ := json.Marshal(body)
	var cj reviewweb.ChangeJSON
	if err := json.Unmarshal(b, &cj); err != nil {
		t.Fatalf("GET changes/%s: %v\n%s", id, err, b)
	}
	return cj
}

func revertsRecorded(t *testing.T, dbURL string) int {
	t.Helper()
	return count(t, dbURL, "SELECT count(*) FROM airlock.changes WHERE reverts IS NOT NULL")
}

func TestReviewRevertAPI(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDatabase(t)
	scope := reviewScopeFile(t, "rv_revert_api", 1)
	endpoint, base := startReview(t, dbURL, scope, nil)
	agent := httpClient(t, endpoint, tokenA)
	api := base + "/review/api/"

	// A pending change has nothing to revert.
	pending := applyChange(t, agent, "OPS-400", "UPDATE orders SET status = 'paid' WHERE id = 30")
	if st, body := reviewAPI(t, "POST", api+"changes/"+pending+"/revert", aliceToken, nil); st != 409 || errCode(body) != "not_committed" {
		t.Errorf("revert of a pending change: %d %v", st, body)
	}
	if cj := changeJSON(t, base, aliceToken, pending); cj.Revertibility != nil || cj.Reverts != nil || len(cj.RevertedBy) != 0 {
		t.Errorf("a pending change says %+v %+v %+v on reverts", cj.Revertibility, cj.Reverts, cj.RevertedBy)
	}

	before, id := revertedChange(t, dbURL, base, agent, "OPS-401")
	cj := changeJSON(t, base, aliceToken, id)
	if r := cj.Revertibility; r == nil || !r.Possible || !r.Captured || r.Reason != "" || !r.Until.After(time.Now().Add(6*24*time.Hour)) ||
		r.Rows["public.orders"] != (reviewweb.RowImages{Before: 5, After: 6}) {
		t.Fatalf("revertibility of the committed change: %+v", cj.Revertibility)
	}

	t.Run("refusals leave everything as it was", func(t *testing.T) {
		snap := pgtest.Fingerprint(t, dbURL).DatabaseOnly()
		cases := []struct {
			name, id, token string
			body            any
			header          []string
			status          int
			code            string
		}{
			{"agent token", id, tokenA, map[string]bool{}, nil, 401, "agent_token"},
			{"no token", id, "", map[string]bool{}, nil, 401, "unauthorized"},
			{"wrong token", id, "wrong-" + aliceToken, map[string]bool{}, nil, 401, "unauthorized"},
			{"cross-origin", id, aliceToken, map[string]bool{}, []string{"Origin", "https://evil.example"}, 403, "cross_origin"},
			{"cross-site fetch", id, aliceToken, map[string]bool{}, []string{"Sec-Fetch-Site", "cross-site"}, 403, "cross_origin"},
			{"opaque origin", id, aliceToken, map[string]bool{}, []string{"Origin", "null"}, 403, "cross_origin"},
			{"unknown field", id, aliceToken, map[string]any{"reviewer": "mallory"}, nil, 400, "bad_request"},
			{"not a bool", id, aliceToken, map[string]any{"only_unchanged": "yes"}, nil, 400, "bad_request"},
			{"unknown change", "00000000-0000-4000-8000-000000000000", aliceToken, nil, nil, 404, "not_found"},
			{"not an id", "not-a-change", aliceToken, nil, nil, 404, "not_found"},
		}
		for _, tc := range cases {
			st, body := reviewAPI(t, "POST", api+"changes/"+tc.id+"/revert", tc.token, tc.body, tc.header...)
			if st != tc.status || errCode(body) != tc.code {
				t.Errorf("%s: %d %v, want %d %s", tc.name, st, body, tc.status, tc.code)
			}
		}
		if d := snap.Diff(pgtest.Fingerprint(t, dbURL).DatabaseOnly()); d != "" {
			t.Fatalf("refused reverts changed the database:\n%s", d)
		}
		if n := revertsRecorded(t, dbURL); n != 0 {
			t.Fatalf("refused reverts recorded %d revert(s)", n)
		}
	})

	t.Run("rows changed since refuse it, with their keys", func(t *testing.T) {
		conn := pgtest.Connect(t, dbURL)
		if _, err := conn.Exec(t.Context(), "UPDATE orders SET status = 'shipped' WHERE id = 2"); err != nil {
			t.Fatal(err)
		}
		snap := pgtest.Fingerprint(t, dbURL).DatabaseOnly()
		st, body := reviewAPI(t, "POST", api+"changes/"+id+"/revert", aliceToken, map[string]bool{"only_unchanged": false})
		e, _ := body["error"].(map[string]any)
		keys, _ := e["keys"].(map[string]any)
		if st != 409 || errCode(body) != "revert_conflict" || fmt.Sprint(keys["public.orders"]) != `[{"id": 2}]` || e["count"] != 1.0 ||
			!strings.Contains(fmt.Sprint(e["message"]), `{"id": 2}`) {
			t.Fatalf("revert over a changed row: %d %v", st, body)
		}
		if d := snap.Diff(pgtest.Fingerprint(t, dbURL).DatabaseOnly()); d != "" {
			t.Fatalf("a refused revert changed the database:\n%s", d)
		}
		if n := revertsRecorded(t, dbURL); n != 0 {
			t.Fatalf("a refused revert recorded %d revert(s)", n)
		}
		// Put the row back as the change left it: nothing is in the way.
		if _, err := conn.Exec(t.Context(), "UPDATE orders SET status = 'refunded' WHERE id = 2"); err != nil {
			t.Fatal(err)
		}
	})

	var rid string
	t.Run("revert, then a second reviewer commits it", func(t *testing.T) {
		committed := pgtest.Fingerprint(t, dbURL).DatabaseOnly()
		st, body := reviewAPI(t, "POST", api+"changes/"+id+"/revert", aliceToken, map[string]bool{})
		b, _ := json.Marshal(body)
		var out reviewweb.Outcome
		if st != 200 || json.Unmarshal(b, &out) != nil || out.Status != "pending" || out.Change == nil || out.Change.Reverts != id ||
			out.Change.Revert == nil || len(out.Change.Revert.Tables) != 1 || !strings.Contains(out.Message, "recorded by alice") {
			t.Fatalf("revert: %d %s", st, b)
		}
		if tb := out.Change.Revert.Tables[0]; tb.Relation != "public.orders" || tb.Restored != 5 || tb.Removed != 1 || tb.PutBack != 0 || len(tb.Skipped) != 0 {
			t.Fatalf("the revert's plan: %+v", tb)
		}
		rid = out.Change.ID
		if d := committed.Diff(pgtest.Fingerprint(t, dbURL).DatabaseOnly()); d != "" {
			t.Fatalf("a pending revert changed the database:\n%s", d)
		}
		orig := changeJSON(t, base, bobToken, id)
		if len(orig.RevertedBy) != 1 || orig.RevertedBy[0].ID != rid || orig.RevertedBy[0].Status != "pending" ||
			orig.RevertedBy[0].Link != "/review/changes/"+rid || orig.RevertedBy[0].API != "/review/api/changes/"+rid {
			t.Fatalf("the original's reverted_by: %+v", orig.RevertedBy)
		}
		rev := changeJSON(t, base, bobToken, rid)
		if rev.Reverts == nil || rev.Reverts.ID != id || rev.Reverts.Link != "/review/changes/"+id || rev.Change.Revert == nil || rev.Revertibility != nil {
			t.Fatalf("the revert: reverts %+v, plan %+v, revertibility %+v", rev.Reverts, rev.Change.Revert, rev.Revertibility)
		}
		// show --server says what show says, the undo part included.
		remote, code := reviewCLI(t, aliceToken, "show", id, "--server", base)
		direct, _ := reviewer(t, dbURL, "show", id)
		if code != 0 || !strings.Contains(remote, "Revert: possible until") || stripAges(remote) != stripAges(direct) {
			t.Errorf("show --server (%d):\n%s\n---\n%s", code, remote, direct)
		}
		if out, code := reviewCLI(t, aliceToken, "show", rid, "--server", base); code != 0 || !strings.Contains(out, "Revert of change "+id) ||
			!strings.Contains(out, "restore 5 updated row(s), remove 1 inserted row(s)") {
			t.Errorf("show --server of the revert (%d):\n%s", code, out)
		}

		st, body = reviewAPI(t, "POST", api+"changes/"+rid+"/commit", bobToken, map[string]string{"expect": rev.Change.ApprovalHash})
		if st != 200 || body["status"] != "committed" {
			t.Fatalf("bob commits the revert: %d %v", st, body)
		}
		if d := before.Diff(pgtest.Fingerprint(t, dbURL).DatabaseOnly()); d != "" {
			t.Fatalf("after the revert the database differs from before the change:\n%s", d)
		}
		if n := count(t, dbURL, "SELECT count(*) FROM airlock.changes WHERE id = '"+rid+"' AND status = 'committed' AND reviewer = 'bob' AND reverts = '"+id+"'"); n != 1 {
			t.Fatal("the revert's commit is not recorded under bob")
		}
		orig = changeJSON(t, base, aliceToken, id)
		if len(orig.RevertedBy) != 1 || orig.RevertedBy[0].Status != "committed" || orig.RevertedBy[0].Reviewer != "bob" {
			t.Fatalf("the original's reverted_by after the commit: %+v", orig.RevertedBy)
		}
		// A revert can be reverted.
		if r := changeJSON(t, base, aliceToken, rid).Revertibility; r == nil || !r.Possible {
			t.Fatalf("the committed revert's revertibility: %+v", r)
		}
	})
}

func TestReviewRevertCLIServer(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDatabase(t)
	scope := reviewScopeFile(t, "rv_revert_cli", 1)
	endpoint, base := startReview(t, dbURL, scope, nil)
	agent := httpClient(t, endpoint, tokenA)
	_, id := revertedChange(t, dbURL, base, agent, "OPS-411")
	conn := pgtest.Connect(t, dbURL)
	if _, err := conn.Exec(t.Context(), "UPDATE orders SET status = 'shipped' WHERE id = 4"); err != nil {
		t.Fatal(err)
	}
	snap := pgtest.Fingerprint(t, dbURL).DatabaseOnly()
	for _, tc := range []struct {
		token string
		args  []string
		want  string
	}{
		{"", []string{"revert", id, "--server", base}, "AIRLOCK_REVIEWER_TOKEN"},
		{tokenA, []string{"revert", id, "--server", base}, "agent token"},
		{aliceToken, []string{"revert", id, "--server", base, "--reviewer", "mallory"}, "not taken with --server"},
		{aliceToken, []string{"revert", id, "--server", base}, `refused: change ` + id + `: 1 row(s) changed since it was committed, and a revert would overwrite them: public.orders {"id": 4}`},
		{aliceToken, []string{"revert", "00000000-0000-4000-8000-000000000000", "--server", base}, "no such change"},
	} {
		out, code := reviewCLI(t, tc.token, tc.args...)
		if code == 0 || !strings.Contains(out, tc.want) {
			t.Errorf("%v (%d), want %q:\n%s", tc.args, code, tc.want, out)
		}
	}
	if d := snap.Diff(pgtest.Fingerprint(t, dbURL).DatabaseOnly()); d != "" || revertsRecorded(t, dbURL) != 0 {
		t.Fatalf("refused reverts changed the database (%d reverts recorded):\n%s", revertsRecorded(t, dbURL), d)
	}

	out, code := reviewCLI(t, aliceToken, "revert", id, "--server", base, "--only-unchanged")
	m := pendingRevert.FindStringSubmatch(out)
	if code != 0 || m == nil || !strings.Contains(out, "commit it with airlock commit "+m[1]+" --server "+base) {
		t.Fatalf("revert --server --only-unchanged (%d): %s", code, out)
	}
	rid := m[1]
	if out, code := reviewCLI(t, bobToken, "commit", rid, "--server", base); code != 0 || !strings.HasPrefix(out, "committed:") {
		t.Fatalf("bob commits the revert (%d): %s", code, out)
	}
	if n := count(t, dbURL, "SELECT count(*) FROM orders WHERE id IN (1, 2, 3, 5) AND status = 'refunded'"); n != 0 {
		t.Errorf("%d unchanged rows are still as the change left them", n)
	}
	if s := orderStatus(t, dbURL, 4); s != "shipped" {
		t.Errorf("the revert overwrote the row changed since: %s", s)
	}
	if n := count(t, dbURL, "SELECT count(*) FROM orders WHERE id = 90001"); n != 0 {
		t.Error("the inserted order is still there")
	}
	if n := count(t, dbURL, "SELECT count(*) FROM airlock.changes WHERE id = '"+rid+"' AND reverts = '"+id+"' AND status = 'committed' AND reviewer = 'bob'"); n != 1 {
		t.Fatal("the revert is not committed under bob")
	}
}

// TestReviewRevertForms: the page's revert form needs the session's CSRF
// token and the page's own origin; posted by the page it leads to the
// revert's page, which a second reviewer approves with its own form.
func TestReviewRevertForms(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDatabase(t)
	scope := reviewScopeFile(t, "rv_revert_forms", 1)
	endpoint, base := startReview(t, dbURL, scope, nil)
	agent := httpClient(t, endpoint, tokenA)
	before, id := revertedChange(t, dbURL, base, agent, "OPS-421")
	alice := sessionClient(t, base, aliceToken)

	getPage := func(c *http.Client, path string) string {
		t.Helper()
		resp, err := c.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d\n%s", path, resp.StatusCode, b)
		}
		return string(b)
	}
	postForm := func(c *http.Client, path string, vals url.Values, header ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(vals.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}

	page := getPage(alice, "/review/changes/"+id)
	if !strings.Contains(page, `action="/review/changes/`+id+`/revert"`) || !strings.Contains(page, "Revert possible until") || !strings.Contains(page, `name="only_unchanged"`) {
		t.Fatalf("the committed change's page offers no revert:\n%s", page)
	}
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no CSRF token on the change page")
	}
	csrf := m[1]

	snap := pgtest.Fingerprint(t, dbURL).DatabaseOnly()
	for _, tc := range []struct {
		name   string
		vals   url.Values
		header []string
	}{
		{"no CSRF token", url.Values{}, nil},
		{"wrong CSRF token", url.Values{"csrf": {strings.Repeat("0", 64)}}, nil},
		{"cross-site with the token", url.Values{"csrf": {csrf}}, []string{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}},
		{"same-site with the token", url.Values{"csrf": {csrf}}, []string{"Sec-Fetch-Site", "same-site"}},
		{"agent token", url.Values{"csrf": {csrf}}, []string{"Authorization", "Bearer " + tokenA}},
	} {
		if resp := postForm(alice, "/review/changes/"+id+"/revert", tc.vals, tc.header...); resp.StatusCode != 403 && resp.StatusCode != 401 {
			t.Errorf("%s: %d", tc.name, resp.StatusCode)
		}
	}
	// Without a session, the form is no way in either.
	if resp := postForm(&http.Client{CheckRedirect: alice.CheckRedirect}, "/review/changes/"+id+"/revert", url.Values{"csrf": {csrf}}); resp.StatusCode != 401 {
		t.Errorf("no session: %d", resp.StatusCode)
	}
	if d := snap.Diff(pgtest.Fingerprint(t, dbURL).DatabaseOnly()); d != "" || revertsRecorded(t, dbURL) != 0 {
		t.Fatalf("refused revert forms changed the database (%d reverts recorded):\n%s", revertsRecorded(t, dbURL), d)
	}

	resp := postForm(alice, "/review/changes/"+id+"/revert", url.Values{"csrf": {csrf}}, "Origin", base)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/review/changes/") || strings.HasSuffix(loc, id) {
		t.Fatalf("revert form: %d to %q", resp.StatusCode, loc)
	}
	rid := strings.TrimPrefix(loc, "/review/changes/")
	page = getPage(alice, loc)
	for _, want := range []string{`Revert of change <a id="reverts-link" href="/review/changes/` + id + `">`, `id="revert-plan"`,
		"recorded by alice", `id="approve-button"`, "public.orders"} {
		if !strings.Contains(page, want) {
			t.Errorf("the revert's page lacks %q", want)
		}
	}
	if d := snap.Diff(pgtest.Fingerprint(t, dbURL).DatabaseOnly()); d != "" {
		t.Fatalf("a pending revert changed the database:\n%s", d)
	}
	page = getPage(alice, "/review/changes/"+id)
	if !strings.Contains(page, `id="reverted-by"`) || !strings.Contains(page, `href="/review/changes/`+rid+`"`) ||
		strings.Contains(page, `id="revert-button"`) || !strings.Contains(page, "A revert of this change is pending") {
		t.Errorf("the original's page with a pending revert:\n%s", page)
	}

	// Bob approves the revert with the page's own form.
	bob := sessionClient(t, base, bobToken)
	page = getPage(bob, "/review/changes/"+rid)
	bcsrf := csrfField.FindStringSubmatch(page)
	hash := regexp.MustCompile(`name="expect" value="([0-9a-f]{64})"`).FindStringSubmatch(page)
	if bcsrf == nil || hash == nil {
		t.Fatal("the revert's page has no approve form")
	}
	if resp := postForm(bob, "/review/changes/"+rid+"/approve", url.Values{"csrf": {bcsrf[1]}, "expect": {hash[1]}}, "Origin", base); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("bob approves the revert: %d", resp.StatusCode)
	}
	if d := before.Diff(pgtest.Fingerprint(t, dbURL).DatabaseOnly()); d != "" {
		t.Fatalf("after the revert the database differs from before the change:\n%s", d)
	}
	if page := getPage(bob, "/review/changes/"+id); !strings.Contains(page, rid+"</a> (committed by bob)") || strings.Contains(page, `id="revert-button"`) {
		t.Errorf("the original's page after its revert committed:\n%s", page)
	}
}
