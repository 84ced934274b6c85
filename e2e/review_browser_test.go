package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/airlock-dev/airlock/internal/pgtest"
)

// The review page in a real browser: headless Chromium driven over the
// DevTools protocol (chromedp) against the built binary. A reviewer signs
// in, watches the pending list update itself, reads a change and decides
// on it with the page's own forms; a forged cross-site form, an agent
// token at sign-in and hostile text in a summary get nowhere. As in
// review_test.go, the oracle of every decision and every refusal is the
// database.

// browserTimeout bounds each batch of browser steps: a hung page fails the
// test instead of eating the package's time.
const browserTimeout = 60 * time.Second

// chromiumPath finds the browser: Debian's chromium on PATH, then the
// usual names and places. The tests never skip without one: .ci/run
// installs it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	for _, p := range []string{"/usr/bin/chromium", "/usr/lib/chromium/chromium", "/snap/bin/chromium"} {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	t.Fatal("no chromium binary found for the review page's browser tests: install it " +
		"(Debian: apt-get update && apt-get install -y chromium; .ci/run does this in CI)")
	return ""
}

// browser is one tab of a headless Chromium that a test drives.
type browser struct {
	t    *testing.T
	ctx  context.Context
	name string // for failure messages: whose browser this is
}

// newBrowser starts a headless Chromium of its own for the test (one
// allocator, one user data directory, extra command-line options after
// the usual ones) and returns its first tab. The
// browser is stopped, and its directory removed, when the test ends.
func newBrowser(t *testing.T, name string, extra ...chromedp.ExecAllocatorOption) *browser {
	t.Helper()
	dir, err := os.MkdirTemp("", "airlock-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox, // CI runs as root, where Chromium's sandbox refuses to start
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.UserDataDir(dir),
		chromedp.WindowSize(1280, 900),
	)
	opts = append(opts, extra...)
	allocCtx, allocCancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		allocCancel() // waits for the browser process to exit
		// The browser's helpers may still be letting go of the directory.
		for i := 0; i < 20; i++ {
			if os.RemoveAll(dir) == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	// The first run starts the browser, and its context must have no
	// deadline: the browser lives as long as it.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	b := &browser{t: t, ctx: ctx, name: name}
	b.do(chromedp.EmulateViewport(1280, 900))
	return b
}

// isolated opens a tab in a new browser context of the same browser: its
// own cookies and storage, as a second person's browser would have.
func (b *browser) isolated(name string) *browser {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	b.t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		b.t.Fatalf("open a new browser context: %v", err)
	}
	nb := &browser{t: b.t, ctx: ctx, name: name}
	nb.do(chromedp.EmulateViewport(1280, 900))
	return nb
}

// do runs steps within browserTimeout and fails the test, with where the
// page was, if one fails.
func (b *browser) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s's browser: %v\n%s", b.name, err, b.where())
	}
}

// where describes the current page for a failure message.
func (b *browser) where() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	if len(text) > 2000 {
		text = text[:2000] + "…"
	}
	return fmt.Sprintf("at %s:\n%s", loc, text)
}

// get runs one action that returns a value, within browserTimeout.
func get[T any](b *browser, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("%s's browser: %v\n%s", b.name, err, b.where())
	}
	return v
}

// text is the text content of the first element that matches the CSS
// selector, once it is there.
func (b *browser) text(sel string) string {
	b.t.Helper()
	b.do(chromedp.WaitReady(chromedp.CSS(sel)))
	return get(b, chromedp.TextContent(chromedp.CSS(sel)))
}

// present reports whether an element matches the CSS selector now.
func (b *browser) present(sel string) bool {
	b.t.Helper()
	return get(b, chromedp.Evaluate[bool](fmt.Sprintf(`document.querySelector(%q) !== null`, sel)))
}

// location is the current page's URL.
func (b *browser) location() string {
	b.t.Helper()
	return get(b, chromedp.Location())
}

// reviewCookies are the browser's session cookies of the review page.
func (b *browser) reviewCookies(base string) []*network.Cookie {
	b.t.Helper()
	res := get(b, chromedp.Action[network.GetCookiesResult](func(ctx context.Context, t *chromedp.Target) (network.GetCookiesResult, error) {
		return chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{base + "/review/"}})
	}))
	var out []*network.Cookie
	for _, c := range res.Cookies {
		if c.Name == "airlock_review" {
			out = append(out, c)
		}
	}
	return out
}

// submitStep clicks a form's button and waits for the page the form
// leads to, which must show want. It stops at once on the review page's
// error page or a sign-in error instead, and says what the page says:
// a refused form fails fast, not after the timeout.
func (b *browser) submitStep(button, want string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		if _, err := chromedp.Click(chromedp.CSS(button))(ctx, t); err != nil {
			return chromedp.Void{}, err
		}
		if _, err := chromedp.WaitVisible(chromedp.CSS(want+", #error, #login-error"))(ctx, t); err != nil {
			return chromedp.Void{}, fmt.Errorf("after %s, waiting for %s: %w", button, want, err)
		}
		ok, err := chromedp.Evaluate[bool](fmt.Sprintf(`document.querySelector(%q) !== null`, want))(ctx, t)
		if err != nil {
			return chromedp.Void{}, err
		}
		if !ok {
			return chromedp.Void{}, fmt.Errorf("%s led to a page without %s", button, want)
		}
		return chromedp.Void{}, nil
	}
}

// signIn types token into the sign-in form and submits it, the way a
// reviewer does, and waits for the pending list.
func (b *browser) signIn(base, token, name string) {
	b.t.Helper()
	b.do(
		chromedp.Navigate(base+"/review/login"),
		chromedp.WaitVisible(chromedp.CSS("form#login")),
		chromedp.SendKeys(chromedp.CSS("input#token"), token),
		b.submitStep("button#signin", "table#pending"),
	)
	if got := b.text("#reviewer"); !strings.Contains(got, "signed in as "+name) {
		b.t.Fatalf("header says %q, want signed in as %s", got, name)
	}
}

// openChange loads the change page of id.
func (b *browser) openChange(base, id string) {
	b.t.Helper()
	b.do(
		chromedp.Navigate(base+"/review/changes/"+id),
		chromedp.WaitVisible(chromedp.CSS("#approval-hash")),
	)
	if got := strings.TrimSpace(b.text("#change-id")); got != id {
		b.t.Fatalf("change page shows change %q, want %s", got, id)
	}
}

// screenshot writes a full-page PNG to testdata/screenshots/name: an
// artifact to look at, never compared.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	png := get(b, chromedp.FullScreenshot(100))
	if len(png) < 8 || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		b.t.Fatalf("screenshot %s: not a PNG (%d bytes)", name, len(png))
	}
	path := pgtest.Testdata("screenshots", name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Size() == 0 {
		b.t.Fatalf("screenshot %s: %v", path, err)
	}
}

// rowSelector is the pending list's row of change id.
func rowSelector(id string) string { return fmt.Sprintf(`tr.change[data-id=%q]`, id) }

var hashPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// orderStatus is the status of one order.
func orderStatus(t *testing.T, dbURL string, id int) string {
	t.Helper()
	var s string
	if err := pgtest.Connect(t, dbURL).QueryRow(t.Context(), `SELECT status FROM orders WHERE id = $1`, id).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestReviewBrowserApprove: alice signs in, the pending list shows a change
// the agent applies while she looks (the page updates itself, no reload),
// she opens it, reads its evidence and approves; the change commits under
// her name.
func TestReviewBrowserApprove(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDatabase(t)
	scope := reviewScopeFile(t, "rv_browser_approve", 1)
	endpoint, base := startReview(t, dbURL, scope, nil)
	agent := httpClient(t, endpoint, tokenA)
	b := newBrowser(t, "alice")

	b.signIn(base, aliceToken, "alice")
	if !b.present("#pending-rows tr#none") {
		t.Fatalf("a fresh database's pending list is not empty\n%s", b.where())
	}
	// A mark on the window: a reload or navigation would lose it.
	b.do(chromedp.Evaluate[chromedp.Void](`window.__airlockNoReload = "kept"`))

	if n := count(t, dbURL, "SELECT count(*) FROM orders WHERE id = 5 AND status = 'refunded'"); n != 0 {
		t.Fatalf("order 5 is refunded before the change: %d", n)
	}
	id := applyChange(t, agent, "OPS-1", "UPDATE orders SET status = 'refunded' WHERE id = 5")
	start := time.Now()
	b.do(chromedp.WaitVisible(chromedp.CSS(rowSelector(id))))
	t.Logf("the pending list showed the new change after %s", time.Since(start).Round(time.Millisecond))
	if mark := get(b, chromedp.Evaluate[string](`String(window.__airlockNoReload)`)); mark != "kept" {
		t.Fatalf("the pending list reloaded instead of updating itself (mark %q)", mark)
	}
	if got := b.text("#updated"); !strings.HasPrefix(got, "updated ") {
		t.Errorf("#updated says %q after a self-update", got)
	}
	if b.present("#pending-rows tr#none") {
		t.Error(`the pending list still says no change waits`)
	}
	row := b.text(rowSelector(id))
	for _, want := range []string{"OPS-1", "e2e OPS-1", "0 of 1", id[:8]} {
		if !strings.Contains(row, want) {
			t.Errorf("pending row %q lacks %q", row, want)
		}
	}
	b.screenshot("review-pending.png")

	b.do(
		chromedp.Click(chromedp.CSS(rowSelector(id)+" a.change-link")),
		chromedp.WaitVisible(chromedp.CSS("#approval-hash")),
	)
	if loc := b.location(); loc != base+"/review/changes/"+id {
		t.Fatalf("the change link went to %s", loc)
	}
	if got := b.text("#ticket"); got != "OPS-1" {
		t.Errorf("ticket %q", got)
	}
	if got := b.text("#summary"); got != "e2e OPS-1" {
		t.Errorf("summary %q", got)
	}
	if got := b.text("#status"); !strings.HasPrefix(got, "pending") {
		t.Errorf("status %q", got)
	}
	hash := b.text("#approval-hash")
	if !hashPattern.MatchString(hash) {
		t.Errorf("approval hash %q", hash)
	}
	if got := get(b, chromedp.Value(chromedp.CSS(`form#approve input[name="expect"]`))); got != hash {
		t.Errorf("the approve form expects %q, the page shows %q", got, hash)
	}
	if got := b.text("#approvals"); !strings.HasPrefix(got, "0 of 1") {
		t.Errorf("approvals %q", got)
	}
	sql := b.text("#sql")
	if !strings.Contains(sql, "UPDATE orders SET status = 'refunded' WHERE id = 5") {
		t.Errorf("SQL %q", sql)
	}
	if ln := b.text("#sql tr:first-child td.ln"); ln != "1" {
		t.Errorf("the first SQL line is numbered %q", ln)
	}
	for _, sel := range []string{"#statements", "#schema-diff", "#warnings", "#reject"} {
		if !b.present(sel) {
			t.Errorf("the change page has no %s", sel)
		}
	}
	if got := b.text("#statements tbody"); !strings.Contains(strings.ToLower(got), "update") || !strings.Contains(got, "public.orders") {
		t.Errorf("statements %q", got)
	}
	b.screenshot("review-change.png")

	b.do(
		b.submitStep("button#approve-button", "#flash"),
	)
	if got := b.text("#flash"); !strings.HasPrefix(got, "committed by alice") {
		t.Fatalf("flash %q, want committed by alice", got)
	}
	if loc := b.location(); loc != base+"/review/changes/"+id {
		t.Errorf("after the decision the page is %s", loc)
	}
	if got := b.text("#status"); !strings.HasPrefix(got, "committed by alice") {
		t.Errorf("status after commit %q", got)
	}
	if b.present("form#approve") || b.present("form#reject") {
		t.Error("a committed change still offers the decision forms")
	}
	if n := count(t, dbURL, "SELECT count(*) FROM orders WHERE id = 5 AND status = 'refunded'"); n != 1 {
		t.Fatal("the approved change did not commit")
	}
	if n := count(t, dbURL, "SELECT count(*) FROM airlock.changes WHERE id = '"+id+"' AND status = 'committed' AND reviewer = 'alice'"); n != 1 {
		t.Fatal("the commit is not recorded under alice")
	}
	if s := changeStatus(t, agent, id); s != "committed" {
		t.Errorf("the agent sees %s", s)
	}
}

// TestReviewBrowserReject: bob rejects a change with a reason; nothing of
// it reaches the orders, and the reason is recorded under his name.
func TestReviewBrowserReject(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDatabase(t)
	scope := reviewScopeFile(t, "rv_browser_reject", 1)
	endpoint, base := startReview(t, dbURL, scope, nil)
	agent := httpClient(t, endpoint, tokenA)
	before := orderStatus(t, dbURL, 9)
	if before == "cancelled" {
		t.Fatal("order 9 is cancelled before the change")
	}
	id := applyChange(t, agent, "OPS-2", "UPDATE orders SET status = 'cancelled' WHERE id = 9")
	b := newBrowser(t, "bob")

	b.signIn(base, bobToken, "bob")
	b.do(
		chromedp.WaitVisible(chromedp.CSS(rowSelector(id))),
		chromedp.Click(chromedp.CSS(rowSelector(id)+" a.change-link")),
		chromedp.WaitVisible(chromedp.CSS("textarea#reason")),
	)
	const reason = "wrong customer: see OPS-2's thread"
	b.do(
		chromedp.SendKeys(chromedp.CSS("textarea#reason"), reason),
		b.submitStep("button#reject-button", "#flash"),
	)
	if got := b.text("#flash"); !strings.HasPrefix(got, "rolled back by bob") {
		t.Fatalf("flash %q, want rolled back by bob", got)
	}
	if got := b.text("#reason-given"); got != reason {
		t.Errorf("the page shows the reason %q", got)
	}
	if n := count(t, dbURL, "SELECT count(*) FROM airlock.changes WHERE id = '"+id+"' AND status = 'rolled_back' AND reviewer = 'bob' AND reason = '"+strings.ReplaceAll(reason, "'", "''")+"'"); n != 1 {
		t.Fatal("the rejection is not recorded as rolled back under bob with its reason")
	}
	if after := orderStatus(t, dbURL, 9); after != before {
		t.Fatalf("a rejected change changed order 9: %s -> %s", before, after)
	}
	if s := changeStatus(t, agent, id); s != "rolled_back" {
		t.Errorf("the agent sees %s", s)
	}
	// Back on the list, the change is gone.
	b.do(
		chromedp.Navigate(base+"/review/"),
		chromedp.WaitVisible(chromedp.CSS("table#pending")),
	)
	if b.present(rowSelector(id)) {
		t.Error("a rejected change is still on the pending list")
	}
}

// TestReviewBrowserTwoPersonRule: with write.approvals 2, alice's approval
// in her browser records her approval and changes nothing; she cannot
// approve twice; bob's, in a browser context of his own, commits.
func TestReviewBrowserTwoPersonRule(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDatabase(t)
	scope := reviewScopeFile(t, "rv_browser_two", 2)
	endpoint, base := startReview(t, dbURL, scope, nil)
	agent := httpClient(t, endpoint, tokenA)
	id := applyChange(t, agent, "OPS-3", "UPDATE orders SET status = 'refunded' WHERE id = 11")
	before := ordersState(t, dbURL, id)

	alice := newBrowser(t, "alice")
	alice.signIn(base, aliceToken, "alice")
	alice.openChange(base, id)
	if got := alice.text("#approvals"); !strings.HasPrefix(got, "0 of 2") {
		t.Errorf("approvals before %q", got)
	}
	alice.do(
		alice.submitStep("button#approve-button", "#flash"),
	)
	flash := alice.text("#flash")
	if !strings.HasPrefix(flash, "approved by alice") || !strings.Contains(flash, "waits for 1 more") || !strings.Contains(flash, "nothing is committed") {
		t.Fatalf("flash %q, want approved by alice, waiting for 1 more", flash)
	}
	if after := ordersState(t, dbURL, id); after != before {
		t.Fatalf("one approval of two changed the database:\n%s\n%s", before, after)
	}
	if s := changeStatus(t, agent, id); s != "pending" {
		t.Fatalf("after one approval of two the agent sees %s", s)
	}
	if alice.present("#approve-button") {
		t.Error("alice is offered the approve button again")
	}
	if got := alice.text("form#approve"); !strings.Contains(got, "You approved it; it waits for 1 more reviewer(s)") {
		t.Errorf("the approve form says %q", got)
	}
	if got := alice.text("#approvals"); !strings.HasPrefix(got, "1 of 2") || !strings.Contains(got, "alice at") {
		t.Errorf("approvals after alice %q", got)
	}
	if !alice.present("#reject-button") {
		t.Error("alice can no longer reject")
	}
	// A reload shows the same: the page is built from the database.
	alice.openChange(base, id)
	if alice.present("#approve-button") {
		t.Error("after a reload alice is offered the approve button again")
	}

	bob := alice.isolated("bob")
	// Bob's browser context shares no cookie with alice's.
	bob.do(
		chromedp.Navigate(base+"/review/"),
		chromedp.WaitVisible(chromedp.CSS("form#login")),
	)
	bob.signIn(base, bobToken, "bob")
	if got := bob.text(rowSelector(id) + " td:nth-child(8)"); got != "1 of 2" {
		t.Errorf("bob's pending list counts %q approvals", got)
	}
	bob.openChange(base, id)
	if got := bob.text("button#approve-button"); !strings.Contains(got, "Approve and commit") {
		t.Errorf("bob's approve button says %q", got)
	}
	bob.do(
		bob.submitStep("button#approve-button", "#flash"),
	)
	if got := bob.text("#flash"); !strings.HasPrefix(got, "committed by bob") || !strings.Contains(got, "approved by alice, bob") {
		t.Fatalf("bob's flash %q, want committed by bob (approved by alice, bob)", got)
	}
	if n := count(t, dbURL, "SELECT count(*) FROM orders WHERE id = 11 AND status = 'refunded'"); n != 1 {
		t.Fatal("two approvals did not commit")
	}
	if n := count(t, dbURL, "SELECT count(*) FROM airlock.changes WHERE id = '"+id+"' AND status = 'committed' AND reviewer = 'bob'"); n != 1 {
		t.Fatal("the commit is not recorded under bob")
	}
	if n := count(t, dbURL, "SELECT count(DISTINCT reviewer) FROM airlock.approvals WHERE subject = '"+id+"' AND reviewer IN ('alice', 'bob')"); n != 2 {
		t.Fatalf("%d of alice's and bob's approvals recorded, want 2", n)
	}
}

// TestReviewBrowserAgentToken: an agent's token typed into the sign-in
// form signs nobody in, and neither does a wrong token.
func TestReviewBrowserAgentToken(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDatabase(t)
	scope := reviewScopeFile(t, "rv_browser_agent", 1)
	endpoint, base := startReview(t, dbURL, scope, nil)
	agent := httpClient(t, endpoint, tokenA)
	id := applyChange(t, agent, "OPS-4", "UPDATE orders SET status = 'refunded' WHERE id = 13")
	before := ordersState(t, dbURL, id)
	b := newBrowser(t, "agent")

	for _, tc := range []struct{ token, want string }{
		{tokenA, "agent token"},
		{"wrong-" + aliceToken, "wrong reviewer token"},
	} {
		b.do(
			chromedp.Navigate(base+"/review/login"),
			chromedp.WaitVisible(chromedp.CSS("form#login")),
			chromedp.SendKeys(chromedp.CSS("input#token"), tc.token),
			b.submitStep("button#signin", "#login-error"),
		)
		if got := b.text("#login-error"); !strings.Contains(got, tc.want) {
			t.Errorf("sign-in error %q, want %q", got, tc.want)
		}
		if b.present("#reviewer") || b.present("table#pending") {
			t.Errorf("token %.10s…: the page shows a signed-in view", tc.token)
		}
		if cs := b.reviewCookies(base); len(cs) != 0 {
			t.Errorf("token %.10s…: the browser holds a session cookie: %+v", tc.token, cs[0])
		}
		b.do(
			chromedp.Navigate(base+"/review/"),
			chromedp.WaitVisible(chromedp.CSS("form#login")),
		)
		if loc := b.location(); loc != base+"/review/login" {
			t.Errorf("token %.10s…: /review/ went to %s, want the sign-in page", tc.token, loc)
		}
		b.do(chromedp.Navigate(base + "/review/changes/" + id))
		if loc := b.location(); loc != base+"/review/login" || b.present("#approval-hash") {
			t.Errorf("token %.10s…: the change page opened (%s)", tc.token, loc)
		}
	}
	if after := ordersState(t, dbURL, id); after != before {
		t.Fatalf("refused sign-ins changed the database:\n%s\n%s", before, after)
	}
}

// TestReviewBrowserCrossSiteForm: while alice is signed in, a page of
// another origin in her browser posts the approve form by itself, with the
// right approval hash and a guessed CSRF token. From another site
// (evil.test: SameSite=Strict keeps the cookie home) and from another
// port of the same host (same site, so the browser sends the cookie, and
// only the origin check stands); each also with Referrer-Policy
// no-referrer, so that the post says Origin: null. None approves anything.
func TestReviewBrowserCrossSiteForm(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDatabase(t)
	scope := reviewScopeFile(t, "rv_browser_csrf", 1)
	endpoint, base := startReview(t, dbURL, scope, nil)
	agent := httpClient(t, endpoint, tokenA)
	id := applyChange(t, agent, "OPS-5", "UPDATE orders SET status = 'refunded' WHERE id = 15")
	before := ordersState(t, dbURL, id)

	var (
		mu   sync.Mutex
		hash string
	)
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		h := hash
		mu.Unlock()
		if r.URL.Query().Has("no-referrer") {
			// The browser then sends Origin: null with the post.
			w.Header().Set("Referrer-Policy", "no-referrer")
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html><head><title>win a prize</title></head><body>
<form id="evil" method="post" action="%s/review/changes/%s/approve">
<input type="hidden" name="expect" value="%s">
<input type="hidden" name="csrf" value="%s">
</form>
<script>window.addEventListener("load", function () { setTimeout(function () { document.getElementById("evil").submit(); }, 10); });</script>
</body></html>`, base, id, h, strings.Repeat("0", 64))
	}))
	t.Cleanup(evil.Close)
	_, port, err := net.SplitHostPort(evil.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}

	b := newBrowser(t, "alice", chromedp.Flag("host-resolver-rules", "MAP evil.test 127.0.0.1"))
	b.signIn(base, aliceToken, "alice")
	b.openChange(base, id)
	mu.Lock()
	hash = b.text("#approval-hash")
	mu.Unlock()
	if !hashPattern.MatchString(hash) {
		t.Fatalf("approval hash %q", hash)
	}
	if len(b.reviewCookies(base)) != 1 {
		t.Fatal("alice's browser holds no session cookie")
	}

	for _, page := range []struct{ name, url string }{
		{"another site", "http://evil.test:" + port + "/"},
		{"another port of the same host", evil.URL + "/"},
		{"another site, Origin: null", "http://evil.test:" + port + "/?no-referrer"},
		{"another port of the same host, Origin: null", evil.URL + "/?no-referrer"},
	} {
		b.do(
			chromedp.Navigate(page.url),
			// The forged post lands on the review page's answer: its
			// error page, or (were it obeyed) the change page's message.
			chromedp.WaitVisible(chromedp.CSS("#error, #flash")),
		)
		loc := b.location()
		if loc != base+"/review/changes/"+id+"/approve" {
			t.Errorf("%s: the forged form landed on %s", page.name, loc)
		}
		if !b.present("#error") {
			t.Errorf("%s: the forged form got no refusal\n%s", page.name, b.where())
		} else {
			t.Logf("%s: the review page answered %q", page.name, b.text("#error"))
		}
		if after := ordersState(t, dbURL, id); after != before {
			t.Fatalf("%s: a forged cross-origin form changed the database:\n%s\n%s", page.name, before, after)
		}
		if n := count(t, dbURL, "SELECT count(*) FROM airlock.approvals WHERE subject = '"+id+"'"); n != 0 {
			t.Fatalf("%s: a forged cross-origin form recorded %d approval(s)", page.name, n)
		}
		if s := changeStatus(t, agent, id); s != "pending" {
			t.Fatalf("%s: after a forged form the agent sees %s", page.name, s)
		}
	}
	// Alice is still signed in and can still decide herself.
	b.openChange(base, id)
	if !b.present("#approve-button") {
		t.Errorf("after the forged forms alice has no approve button\n%s", b.where())
	}
}

// TestReviewBrowserHostileText: a summary with an RTL override, a
// zero-width space and a script tag. The change page shows the invisible
// characters as escapes and the tag as text; no script of the agent's runs
// (no dialog opens), on the change page or in the pending list after it
// updates itself.
func TestReviewBrowserHostileText(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDatabase(t)
	scope := reviewScopeFile(t, "rv_browser_hostile", 1)
	endpoint, base := startReview(t, dbURL, scope, nil)
	agent := httpClient(t, endpoint, tokenA)
	const summary = "refund order 17 \u202ekcabdnuof\u202c and\u200bmore <script>alert(1)</script><img src=x onerror=alert(2)>"
	res := call(t, agent, "apply_migration_with_ticket", map[string]any{
		"ticket":  "OPS-6",
		"summary": summary,
		"sql":     "-- note \u202e<script>alert(3)</script>\nUPDATE orders SET status = 'refunded' WHERE id = 17",
	})
	if res.IsError {
		t.Fatalf("apply: %s", resultText(res))
	}
	var id string
	if m, ok := res.StructuredContent.(map[string]any); ok {
		id, _ = m["change_id"].(string)
	}
	if id == "" {
		t.Fatalf("apply: no change id in %v", res.StructuredContent)
	}
	before := ordersState(t, dbURL, id)

	b := newBrowser(t, "carol")
	var (
		mu      sync.Mutex
		dialogs []string
	)
	if err := chromedp.Listen(b.ctx, func(ev any) {
		if d, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			mu.Lock()
			dialogs = append(dialogs, string(d.Type)+": "+d.Message)
			mu.Unlock()
			// Dismiss it from another goroutine (a listener must not run
			// commands), so that the page goes on and the test can fail.
			go func() {
				ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
				defer cancel()
				_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
			}()
		}
	}); err != nil {
		t.Fatal(err)
	}
	noDialogs := func(where string) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		if len(dialogs) > 0 {
			t.Fatalf("%s: the agent's text opened a dialog: %q", where, dialogs)
		}
	}

	b.signIn(base, carolToken, "carol")
	b.openChange(base, id)
	got := b.text("#summary")
	for _, want := range []string{`\u{202E}`, `\u{202C}`, `\u{200B}`, "<script>alert(1)</script>", "<img src=x onerror=alert(2)>"} {
		if !strings.Contains(got, want) {
			t.Errorf("#summary %q lacks %q", got, want)
		}
	}
	if strings.ContainsAny(got, "\u202e\u202c\u200b") {
		t.Errorf("#summary %q holds an invisible character as itself", got)
	}
	sql := b.text("#sql")
	if !strings.Contains(sql, `\u{202E}<script>alert(3)</script>`) || strings.ContainsRune(sql, '\u202e') {
		t.Errorf("#sql %q: want the RTL override as an escape and the tag as text", sql)
	}
	if n := get(b, chromedp.Evaluate[int](`document.querySelectorAll("main script, main img").length`)); n != 0 {
		t.Errorf("the change page has %d script or img element(s) in its content: the agent's markup became HTML", n)
	}
	if n := get(b, chromedp.Evaluate[int](`document.scripts.length`)); n != 1 {
		t.Errorf("the change page has %d scripts, want only review.js", n)
	}
	noDialogs("the change page")

	// The pending list, first as rendered and then as its script swaps the
	// rows in (innerHTML of what the server rendered).
	b.do(
		chromedp.Navigate(base+"/review/"),
		chromedp.WaitVisible(chromedp.CSS(rowSelector(id))),
	)
	b.do(chromedp.Poll[chromedp.Void](`document.getElementById("updated").textContent.startsWith("updated ")`,
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second)))
	row := b.text(rowSelector(id))
	if !strings.Contains(row, `\u{202E}`) || !strings.Contains(row, "<script>") || strings.ContainsRune(row, '\u202e') {
		t.Errorf("pending row %q: want escapes and the tag as text", row)
	}
	if n := get(b, chromedp.Evaluate[int](`document.querySelectorAll("#pending-rows script, #pending-rows img").length`)); n != 0 {
		t.Errorf("the pending list has %d script or img element(s) from the agent's summary", n)
	}
	noDialogs("the pending list")
	if after := ordersState(t, dbURL, id); after != before {
		t.Fatalf("looking at a change changed the database:\n%s\n%s", before, after)
	}
}

// TestReviewBrowserRevert: with write.approvals 2, a committed change is
// reverted from its page: alice clicks Revert, lands on the revert, a
// pending change like any other, and approves it; bob's approval commits
// it, and the database is as it was before the change. The original's
// page then says who reverted it and offers no second revert.
func TestReviewBrowserRevert(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDatabase(t)
	scope := reviewScopeFile(t, "rv_browser_revert", 2)
	endpoint, base := startReview(t, dbURL, scope, nil)
	agent := httpClient(t, endpoint, tokenA)
	before := pgtest.Fingerprint(t, dbURL).DatabaseOnly()
	was := orderStatus(t, dbURL, 7)
	// The order deleted has no invoice: a delete cascading to invoices,
	// not a write table, would not be captured.
	lone := count(t, dbURL, "SELECT min(id) FROM orders o WHERE id > 8 AND NOT EXISTS (SELECT 1 FROM invoices i WHERE i.order_id = o.id)")
	id := applyChange(t, agent, "OPS-7", fmt.Sprintf("UPDATE orders SET status = 'cancelled' WHERE id BETWEEN 6 AND 8; DELETE FROM orders WHERE id = %d; "+
		"INSERT INTO orders (id, customer_id, status, total, created_at) SELECT id + 90000, customer_id, 'paid', 1, created_at FROM orders WHERE id < 3", lone))
	for _, tok := range []string{aliceToken, bobToken} {
		if st, body := reviewAPI(t, "POST", base+"/review/api/changes/"+id+"/commit", tok, nil); st != 200 {
			t.Fatalf("approve: %d %v", st, body)
		}
	}
	if orderStatus(t, dbURL, 7) != "cancelled" {
		t.Fatal("the change did not commit")
	}

	alice := newBrowser(t, "alice")
	alice.signIn(base, aliceToken, "alice")
	alice.openChange(base, id)
	if got := alice.text("#revert-until"); !strings.HasPrefix(got, "Revert possible until") {
		t.Errorf("#revert-until says %q", got)
	}
	if alice.present("#approve-button") || alice.present("#reverted-by") {
		t.Error("a committed change offers an approval, or says it was reverted")
	}
	if get(alice, chromedp.Evaluate[bool](`document.getElementById("only-unchanged").checked`)) {
		t.Error(`"only rows unchanged since" is ticked by default`)
	}
	alice.do(alice.submitStep("button#revert-button", "#reverts"))
	loc := alice.location()
	rid := strings.TrimPrefix(loc, base+"/review/changes/")
	if !regexp.MustCompile(`^[0-9a-f-]{36}$`).MatchString(rid) || rid == id {
		t.Fatalf("the revert form led to %s", loc)
	}
	if got := alice.text("#flash"); !strings.HasPrefix(got, "revert "+rid+" of change "+id+" recorded by alice") {
		t.Errorf("flash %q", got)
	}
	if got := alice.text("#reverts"); got != "Revert of change "+id {
		t.Errorf("#reverts says %q", got)
	}
	if got := alice.text("#status"); !strings.HasPrefix(got, "pending") {
		t.Errorf("the revert's status %q", got)
	}
	plan := alice.text("#revert-plan tbody")
	for _, want := range []string{"public.orders", "1", "3", "2"} {
		if !strings.Contains(plan, want) {
			t.Errorf("the revert's plan %q lacks %q", plan, want)
		}
	}
	if n := get(alice, chromedp.Evaluate[string](`Array.from(document.querySelectorAll("#revert-plan tbody td.num")).map(function (td) { return td.textContent; }).join(",")`)); n != "1,3,2" {
		t.Errorf("put back, restored, removed: %s, want 1,3,2", n)
	}
	alice.screenshot("review-revert.png")
	// The original is untouched until the revert is approved.
	if s := orderStatus(t, dbURL, 7); s != "cancelled" {
		t.Fatalf("a pending revert changed order 7: %s", s)
	}
	// Reloaded, the page has no flash left: the next one is the approval's.
	alice.openChange(base, rid)
	alice.do(alice.submitStep("button#approve-button", "#flash"))
	if got := alice.text("#flash"); !strings.HasPrefix(got, "approved by alice") || !strings.Contains(got, "waits for 1 more") {
		t.Fatalf("alice's approval of the revert: %q", got)
	}
	if s := orderStatus(t, dbURL, 7); s != "cancelled" {
		t.Fatalf("one approval of two of the revert changed order 7: %s", s)
	}

	bob := alice.isolated("bob")
	bob.signIn(base, bobToken, "bob")
	bob.do(
		chromedp.WaitVisible(chromedp.CSS(rowSelector(rid))),
		chromedp.Click(chromedp.CSS(rowSelector(rid)+" a.change-link")),
		chromedp.WaitVisible(chromedp.CSS("#reverts")),
	)
	bob.do(bob.submitStep("button#approve-button", "#flash"))
	if got := bob.text("#flash"); !strings.HasPrefix(got, "committed by bob") || !strings.Contains(got, "approved by alice, bob") {
		t.Fatalf("bob's approval of the revert: %q", got)
	}
	if d := before.Diff(pgtest.Fingerprint(t, dbURL).DatabaseOnly()); d != "" {
		t.Fatalf("after the revert the database differs from before the change:\n%s", d)
	}
	if s := orderStatus(t, dbURL, 7); s != was {
		t.Fatalf("order 7 is %s, was %s", s, was)
	}

	bob.openChange(base, id)
	if got := bob.text("#reverted-by"); !strings.Contains(got, rid) || !strings.Contains(got, "committed by bob") {
		t.Errorf("#reverted-by says %q", got)
	}
	if bob.present("#revert-button") {
		t.Error("a reverted change offers another revert")
	}
	bob.do(
		chromedp.Click(chromedp.CSS("#reverted-by a.revert-link")),
		chromedp.WaitVisible(chromedp.CSS("#reverts")),
	)
	if loc := bob.location(); loc != base+"/review/changes/"+rid {
		t.Errorf("the reverted-by link went to %s", loc)
	}
	// A committed revert can itself be reverted.
	if !bob.present("#revert-button") {
		t.Errorf("the committed revert offers no revert\n%s", bob.where())
	}
}

// TestReviewBrowserRevertHostileText: a revert refused over rows changed
// since lists their keys, and the keys are the data's: here text primary
// keys with an RTL override, a zero-width space and a script tag, and a
// summary of the agent's with the same. Everything shows as escapes and
// text; no script runs; the refusal changes nothing; with "only rows
// unchanged since" the revert leaves those rows and restores the rest.
func TestReviewBrowserRevertHostileText(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDatabase(t)
	const (
		rlo    = "\u202egnp.exe\u202c"
		script = "<script>alert(4)</script>"
		zw     = "zero\u200bwidth"
	)
	conn := pgtest.Connect(t, dbURL)
	if _, err := conn.Exec(t.Context(), "CREATE TABLE public.tags (name text PRIMARY KEY, note text NOT NULL DEFAULT '')"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"plain", rlo, script, zw} {
		if _, err := conn.Exec(t.Context(), "INSERT INTO public.tags (name) VALUES ($1)", name); err != nil {
			t.Fatal(err)
		}
	}
	scope := writeScopeFile(t, `{
  "name": "rv_browser_revert_hostile",
  "read": {"tables": {"public.tags": {}}},
  "write": {"mode": "replay", "tables": ["public.tags"], "allow": ["update", "insert", "delete"], "ticket_pattern": "^[A-Z]+-[0-9]+$"}
}`)
	endpoint, base := startReview(t, dbURL, scope, nil)
	agent := httpClient(t, endpoint, tokenA)
	const summary = "retag \u202ekcabdnuof\u202c <img src=x onerror=alert(5)>"
	res := call(t, agent, "apply_migration_with_ticket", map[string]any{"ticket": "OPS-8", "summary": summary, "sql": "UPDATE tags SET note = 'x'"})
	if res.IsError {
		t.Fatalf("apply: %s", resultText(res))
	}
	m, _ := res.StructuredContent.(map[string]any)
	id, _ := m["change_id"].(string)
	if id == "" {
		t.Fatalf("apply: %v", res.StructuredContent)
	}
	if st, body := reviewAPI(t, "POST", base+"/review/api/changes/"+id+"/commit", bobToken, nil); st != 200 {
		t.Fatalf("commit: %d %v", st, body)
	}
	// Someone changes two of the rows afterwards.
	if _, err := conn.Exec(t.Context(), "UPDATE public.tags SET note = 'y' WHERE name = ANY($1)", []string{rlo, script}); err != nil {
		t.Fatal(err)
	}
	notes := func() string {
		t.Helper()
		var s string
		if err := pgtest.Connect(t, dbURL).QueryRow(t.Context(), "SELECT string_agg(note, ',' ORDER BY name COLLATE \"C\") FROM public.tags").Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	snap := pgtest.Fingerprint(t, dbURL).DatabaseOnly()

	b := newBrowser(t, "carol")
	var (
		mu      sync.Mutex
		dialogs []string
	)
	if err := chromedp.Listen(b.ctx, func(ev any) {
		if d, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			mu.Lock()
			dialogs = append(dialogs, string(d.Type)+": "+d.Message)
			mu.Unlock()
			go func() {
				ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
				defer cancel()
				_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
			}()
		}
	}); err != nil {
		t.Fatal(err)
	}
	clean := func(where string) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		if len(dialogs) > 0 {
			t.Fatalf("%s: hostile text opened a dialog: %q", where, dialogs)
		}
		if n := get(b, chromedp.Evaluate[int](`document.querySelectorAll("main script, main img").length`)); n != 0 {
			t.Fatalf("%s: %d script or img element(s) in the page's content: hostile text became HTML", where, n)
		}
		if txt := get(b, chromedp.Evaluate[string](`document.body.innerText`)); strings.ContainsAny(txt, "\u202e\u202c\u200b") {
			t.Fatalf("%s: the page holds an invisible character as itself", where)
		}
	}

	b.signIn(base, carolToken, "carol")
	b.openChange(base, id)
	b.do(b.submitStep("button#revert-button", "#revert-error"))
	errText := b.text("#revert-error")
	for _, want := range []string{"revert_conflict", "2 row(s) changed since", `\u{202E}gnp.exe\u{202C}`, script, "public.tags"} {
		if !strings.Contains(errText, want) {
			t.Errorf("#revert-error %q lacks %q", errText, want)
		}
	}
	if n := get(b, chromedp.Evaluate[int](`document.querySelectorAll("#revert-conflicts code.key").length`)); n != 2 {
		t.Errorf("%d keys listed, want 2", n)
	}
	if strings.Contains(errText, `zero\u{200B}width`) || strings.Contains(errText, "plain") {
		t.Errorf("#revert-error lists rows nobody changed: %q", errText)
	}
	clean("the refused revert")
	b.screenshot("review-revert-conflict.png")
	if d := snap.Diff(pgtest.Fingerprint(t, dbURL).DatabaseOnly()); d != "" {
		t.Fatalf("a refused revert changed the database:\n%s", d)
	}
	if n := revertsRecorded(t, dbURL); n != 0 {
		t.Fatalf("a refused revert recorded %d revert(s)", n)
	}

	b.do(
		chromedp.Click(chromedp.CSS("input#only-unchanged")),
		b.submitStep("button#revert-button", "#reverts"),
	)
	if got := b.text("#summary"); !strings.Contains(got, `Revert: retag \u{202E}kcabdnuof\u{202C} <img src=x onerror=alert(5)>`) {
		t.Errorf("the revert's summary %q", got)
	}
	plan := b.text("#revert-plan tbody")
	if !strings.Contains(plan, `\u{202E}gnp.exe\u{202C}`) || !strings.Contains(plan, script) || strings.Contains(plan, "plain") {
		t.Errorf("the revert's plan %q: want the two rows left out, escaped", plan)
	}
	clean("the revert's page")
	b.openChange(base, strings.TrimPrefix(b.location(), base+"/review/changes/"))
	b.do(b.submitStep("button#approve-button", "#flash"))
	if got := b.text("#flash"); !strings.HasPrefix(got, "committed by carol") {
		t.Fatalf("carol commits the revert: %q", got)
	}
	clean("the committed revert")
	// Ordered by name in "C": plain, zero…width, <script>…, then the RLO.
	if got := notes(); got != "y,,,y" {
		t.Fatalf("notes after the revert: %q, want the changed rows kept and the others restored", got)
	}
}
