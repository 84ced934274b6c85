package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
)

var testSecret = []byte("test-secret")

// request is what a test receiver saw.
type request struct {
	header http.Header
	body   []byte
}

// receiver is an httptest webhook answering each request with
// respond(attempt) (attempt from 1) and passing what it got on reqs.
type receiver struct {
	srv      *httptest.Server
	attempts atomic.Int64
	reqs     chan request
}

func newReceiver(t *testing.T, respond func(w http.ResponseWriter, r *http.Request, attempt int64)) *receiver {
	t.Helper()
	rc := &receiver{reqs: make(chan request, 1000)}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("receiver: read body: %v", err)
		}
		n := rc.attempts.Add(1)
		rc.reqs <- request{header: r.Header.Clone(), body: body}
		if respond != nil {
			respond(w, r, n)
		}
	}))
	t.Cleanup(func() {
		// Dropping the connections ends handlers still waiting on a gate.
		rc.srv.CloseClientConnections()
		rc.srv.Close()
	})
	return rc
}

// gate blocks handlers until it is opened or the test ends, so that a test
// decides when a receiver answers.
type gate struct {
	open    chan struct{}
	once    sync.Once
	started chan struct{}
}

func newGate(t *testing.T) *gate {
	g := &gate{open: make(chan struct{}), started: make(chan struct{}, 1000)}
	t.Cleanup(g.release)
	return g
}

func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

func (g *gate) wait(w http.ResponseWriter, r *http.Request, _ int64) {
	g.started <- struct{}{}
	select {
	case <-g.open:
	case <-r.Context().Done():
	}
}

// failures records OnFailure calls.
type failures struct {
	ch chan failure
}

type failure struct {
	target Target
	ev     Event
	err    error
}

func newFailures() *failures { return &failures{ch: make(chan failure, 1000)} }

func (f *failures) record(t Target, ev Event, err error) { f.ch <- failure{t, ev, err} }

func (f *failures) drain() []failure {
	var out []failure
	for {
		select {
		case x := <-f.ch:
			out = append(out, x)
		default:
			return out
		}
	}
}

// start is New with test defaults (quiet log, tiny backoff) and a Close at
// the end of the test.
func start(t *testing.T, cfg Config) *Notifier {
	t.Helper()
	if cfg.Secret == nil {
		cfg.Secret = testSecret
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Backoff == 0 {
		cfg.Backoff = 5 * time.Millisecond
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = n.Close(ctx)
	})
	return n
}

func closeNow(t *testing.T, n *Notifier, within time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	return n.Close(ctx)
}

func next[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func target(t *testing.T, s string) Target {
	t.Helper()
	tg, err := ParseTarget(s)
	if err != nil {
		t.Fatalf("ParseTarget(%q): %v", s, err)
	}
	return tg
}

func fullEvent() Event {
	return Event{
		Type:         EventApproved,
		ID:           "3f1c2a9e-0000-4000-8000-000000000042",
		Ticket:       "OPS-17",
		Summary:      "close stale orders",
		Scope:        "orders",
		Mode:         "replay",
		Risk:         "high",
		RowsAffected: 3,
		Status:       "pending",
		Reviewer:     "alice",
		Reason:       "looks right",
		Approvals:    1,
		Required:     2,
		Link:         "https://airlock.example/changes/42",
		Time:         time.Date(2026, 7, 28, 12, 30, 0, 123456789, time.UTC),
	}
}

// A receiver can verify every attempt and gets every field; a retry
// keeps its delivery id but is signed afresh.
func TestDeliverySignedAndComplete(t *testing.T) {
	var clock atomic.Int64
	clock.Store(1_700_000_000)
	now := func() time.Time { return time.Unix(clock.Add(1), 0) } // a second passes per look

	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, attempt int64) {
		if attempt == 1 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	n := start(t, Config{Targets: []Target{target(t, rc.srv.URL+"/hook")}, Now: now})
	want := fullEvent()
	n.Notify(want)
	if err := closeNow(t, n, 5*time.Second); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := rc.attempts.Load(); got != 2 {
		t.Fatalf("attempts = %d, want 2", got)
	}
	first, second := <-rc.reqs, <-rc.reqs

	for i, r := range []request{first, second} {
		h := r.header
		if err := Verify(testSecret, h.Get("X-Airlock-Timestamp"), h.Get("X-Airlock-Signature"), r.body,
			time.Unix(clock.Load(), 0), time.Minute); err != nil {
			t.Errorf("attempt %d: Verify: %v", i+1, err)
		}
		for k, v := range map[string]string{
			"Content-Type":    "application/json",
			"User-Agent":      "airlock-notify/1",
			"X-Airlock-Event": EventApproved,
		} {
			if got := h.Get(k); got != v {
				t.Errorf("attempt %d: %s = %q, want %q", i+1, k, got, v)
			}
		}
		var got Event
		if err := json.Unmarshal(r.body, &got); err != nil {
			t.Fatalf("attempt %d: decode body: %v", i+1, err)
		}
		if !got.Time.Equal(want.Time) {
			t.Errorf("attempt %d: Time = %v, want %v", i+1, got.Time, want.Time)
		}
		got.Time, want.Time = time.Time{}, time.Time{}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("attempt %d: event\n got %+v\nwant %+v", i+1, got, want)
		}
		want = fullEvent()

		var keys map[string]any
		if err := json.Unmarshal(r.body, &keys); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"type", "id", "ticket", "summary", "scope", "mode", "risk", "rows_affected",
			"status", "reviewer", "reason", "approvals", "approvals_required", "link", "time"} {
			if _, ok := keys[k]; !ok {
				t.Errorf("attempt %d: body lacks %q: %s", i+1, k, r.body)
			}
		}
	}

	id := first.header.Get("X-Airlock-Delivery")
	if _, err := uuid.Parse(id); err != nil {
		t.Errorf("delivery id %q is not a UUID: %v", id, err)
	}
	if again := second.header.Get("X-Airlock-Delivery"); again != id {
		t.Errorf("retry has delivery id %q, first attempt %q", again, id)
	}
	if a, b := first.header.Get("X-Airlock-Timestamp"), second.header.Get("X-Airlock-Timestamp"); a == b {
		t.Errorf("retry reused timestamp %s", a)
	}
	if a, b := first.header.Get("X-Airlock-Signature"), second.header.Get("X-Airlock-Signature"); a == b {
		t.Errorf("retry reused signature %s", a)
	}
}

func TestTimeFilledWhenZero(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rc := newReceiver(t, nil)
	n := start(t, Config{Targets: []Target{target(t, rc.srv.URL)}, Now: func() time.Time { return at }})
	n.Notify(Event{Type: EventPending, ID: "c1"})
	r := next(t, rc.reqs, "delivery")
	var got Event
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatal(err)
	}
	if !got.Time.Equal(at) {
		t.Errorf("Time = %v, want %v", got.Time, at)
	}
}

// Which answers are retried, how often, and what OnFailure hears.
func TestRetries(t *testing.T) {
	tests := []struct {
		name         string
		codes        []int // answer to attempt i; the last one repeats
		wantAttempts int64
		wantFailed   bool
	}{
		{"503 twice then 200", []int{503, 503, 200}, 3, false},
		{"500 then 204", []int{500, 204}, 2, false},
		{"408 then 200", []int{408, 200}, 2, false},
		{"429 then 200", []int{429, 200}, 2, false},
		{"502 every time", []int{502}, 4, true},
		{"400", []int{400}, 1, true},
		{"401", []int{401}, 1, true},
		{"404", []int{404}, 1, true},
		{"410", []int{410}, 1, true},
		{"302 not followed", []int{302}, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			elsewhere := newReceiver(t, nil)
			rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, attempt int64) {
				code := tt.codes[min(int(attempt), len(tt.codes))-1]
				if code == http.StatusFound {
					w.Header().Set("Location", elsewhere.srv.URL)
				}
				w.WriteHeader(code)
				io.WriteString(w, "nope \u202e")
			})
			fs := newFailures()
			tg := target(t, rc.srv.URL)
			n := start(t, Config{Targets: []Target{tg}, MaxAttempts: 4, OnFailure: fs.record})
			ev := Event{Type: EventCommitted, ID: "c1", Time: time.Now()}
			n.Notify(ev)
			if err := closeNow(t, n, 5*time.Second); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if got := rc.attempts.Load(); got != tt.wantAttempts {
				t.Errorf("attempts = %d, want %d", got, tt.wantAttempts)
			}
			if got := elsewhere.attempts.Load(); got != 0 {
				t.Errorf("redirect followed: %d requests elsewhere", got)
			}
			got := fs.drain()
			if !tt.wantFailed {
				if len(got) != 0 {
					t.Errorf("OnFailure called: %v", got[0].err)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("OnFailure called %d times, want 1", len(got))
			}
			f := got[0]
			if f.target != tg || f.ev.ID != ev.ID || f.ev.Type != ev.Type {
				t.Errorf("OnFailure(%+v, %+v), want target %+v, event %s", f.target, f.ev, tg, ev.ID)
			}
			var se *statusError
			if !errors.As(f.err, &se) || se.code != tt.codes[len(tt.codes)-1] {
				t.Errorf("OnFailure error %v, want a statusError with code %d", f.err, tt.codes[len(tt.codes)-1])
			}
			// The receiver's body is shown, made safe to print.
			if msg := f.err.Error(); !strings.Contains(msg, `nope \u{202E}`) || strings.ContainsRune(msg, '\u202e') {
				t.Errorf("error %q does not show the body escaped", msg)
			}
		})
	}
}

// Retry-After is honoured, but never beyond MaxBackoff.
func TestRetryAfterCapped(t *testing.T) {
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, attempt int64) {
		if attempt == 1 {
			w.Header().Set("Retry-After", "3600")
			w.WriteHeader(http.StatusTooManyRequests)
		}
	})
	n := start(t, Config{Targets: []Target{target(t, rc.srv.URL)}, MaxBackoff: 20 * time.Millisecond})
	n.Notify(Event{Type: EventPending, ID: "c1"})
	next(t, rc.reqs, "first attempt")
	next(t, rc.reqs, "retry")
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 7, 28, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		h      string
		want   time.Duration
		wantOK bool
	}{
		{"", 0, false},
		{"7", 7 * time.Second, true},
		{" 0 ", 0, true},
		{"-3", 0, false},
		{"soon", 0, false},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
	}
	for _, tt := range tests {
		got, ok := retryAfter(tt.h, now)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("retryAfter(%q) = %v, %v; want %v, %v", tt.h, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestBackoff(t *testing.T) {
	n := &Notifier{cfg: Config{Backoff: 100 * time.Millisecond, MaxBackoff: time.Second}}
	for attempt := 1; attempt <= 8; attempt++ {
		base := min(100*time.Millisecond<<(attempt-1), time.Second)
		lo, hi := base*8/10, min(base*12/10, time.Second)
		for range 200 {
			if d := n.backoff(attempt); d < lo || d > hi {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", attempt, d, lo, hi)
			}
		}
	}
}

// A target that is down or hangs delays neither Notify nor other targets.
func TestSlowTargetDoesNotBlock(t *testing.T) {
	tests := []struct {
		name string
		bad  func(t *testing.T) string // the bad target's URL
	}{
		{"down", func(t *testing.T) string {
			srv := httptest.NewServer(http.NotFoundHandler())
			srv.Close()
			return srv.URL
		}},
		{"hangs", func(t *testing.T) string {
			g := newGate(t)
			return newReceiver(t, g.wait).srv.URL
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			good := newReceiver(t, nil)
			bad := target(t, tt.bad(t))
			fs := newFailures()
			n := start(t, Config{
				Targets:   []Target{bad, target(t, good.srv.URL)},
				Client:    &http.Client{Timeout: 100 * time.Millisecond},
				OnFailure: fs.record,
			})

			const events = 100
			began := time.Now()
			for i := range events {
				n.Notify(Event{Type: EventPending, ID: "c" + string(rune('A'+i%26))})
			}
			if took := time.Since(began); took > 50*time.Millisecond {
				t.Errorf("%d Notify calls took %v", events, took)
			}
			for i := range events {
				next(t, good.reqs, "delivery "+string(rune('0'+i%10))+" to the healthy target")
			}
			if took := time.Since(began); took > 2*time.Second {
				t.Errorf("healthy target got its events after %v", took)
			}

			// The bad target still has most of its queue: Close gives up on
			// it when its context ends, and reports every event once.
			began = time.Now()
			if err := closeNow(t, n, 100*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Close = %v, want a deadline error", err)
			}
			if took := time.Since(began); took > 2*time.Second {
				t.Errorf("Close took %v", took)
			}
			got := fs.drain()
			if len(got) != events {
				t.Errorf("OnFailure called %d times, want %d", len(got), events)
			}
			for _, f := range got {
				if f.target != bad {
					t.Errorf("OnFailure for %+v, want only the bad target", f.target)
					break
				}
			}
		})
	}
}

// A full queue drops, reports the drop from elsewhere, and never blocks.
func TestQueueOverflow(t *testing.T) {
	g := newGate(t)
	rc := newReceiver(t, g.wait)
	fs := newFailures()
	tg := target(t, rc.srv.URL)
	n := start(t, Config{Targets: []Target{tg}, QueueSize: 2, OnFailure: fs.record})

	id := func(i int) string { return "c" + string(rune('a'+i)) }
	n.Notify(Event{Type: EventPending, ID: id(0)})
	next(t, g.started, "first delivery in flight")

	began := time.Now()
	for i := 1; i <= 10; i++ {
		n.Notify(Event{Type: EventPending, ID: id(i)})
	}
	if took := time.Since(began); took > 50*time.Millisecond {
		t.Errorf("Notify on a full queue took %v", took)
	}
	// Two fit in the queue; the other eight are dropped, in order.
	for i := 3; i <= 10; i++ {
		f := next(t, fs.ch, "drop report")
		if f.ev.ID != id(i) || f.target != tg || !errors.Is(f.err, errQueueFull) {
			t.Errorf("OnFailure(%+v, %s, %v), want event %s dropped", f.target, f.ev.ID, f.err, id(i))
		}
	}

	g.release()
	if err := closeNow(t, n, 5*time.Second); err != nil {
		t.Fatalf("Close: %v", err)
	}
	var ids []string
	for range 3 {
		var ev Event
		if err := json.Unmarshal(next(t, rc.reqs, "delivery").body, &ev); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ev.ID)
	}
	if want := []string{id(0), id(1), id(2)}; !reflect.DeepEqual(ids, want) {
		t.Errorf("delivered %v, want %v", ids, want)
	}
	if extra := fs.drain(); len(extra) != 0 {
		t.Errorf("%d more failures, first %v", len(extra), extra[0].err)
	}
}

// An OnFailure callback that is stuck holds up neither Notify nor the
// count of what was dropped.
func TestSlowOnFailureDoesNotBlock(t *testing.T) {
	g := newGate(t)
	rc := newReceiver(t, g.wait)
	stuck := make(chan struct{})
	var reported atomic.Int64
	var logs bytes.Buffer
	n := start(t, Config{
		Targets:   []Target{target(t, rc.srv.URL)},
		QueueSize: 1,
		Logger:    slog.New(slog.NewTextHandler(&logs, nil)),
		OnFailure: func(Target, Event, error) {
			<-stuck
			reported.Add(1)
		},
	})
	n.Notify(Event{Type: EventPending, ID: "first"})
	next(t, g.started, "first delivery in flight")

	const events = 1000
	began := time.Now()
	for range events {
		n.Notify(Event{Type: EventPending, ID: "more"})
	}
	if took := time.Since(began); took > 50*time.Millisecond {
		t.Errorf("%d Notify calls with OnFailure stuck took %v", events, took)
	}
	close(stuck)
	g.release()
	if err := closeNow(t, n, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	lost := int64(0)
	for _, line := range strings.Split(logs.String(), "\n") {
		if _, c, ok := strings.Cut(line, " count="); ok {
			var k int64
			if _, err := fmt.Sscan(c, &k); err != nil {
				t.Fatalf("log line %q: %v", line, err)
			}
			lost += k
		}
	}
	// One event was in flight and one fit in the queue.
	if got := reported.Load() + lost; got != events-1 {
		t.Errorf("%d drops reported and %d counted, want %d in all", reported.Load(), lost, events-1)
	}
	if lost == 0 {
		t.Error("no drop went uncounted: the test did not overflow the report buffer")
	}
}

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in    string
		url   string
		slack bool
	}{
		{"https://example.com/hook", "https://example.com/hook", false},
		{"  http://127.0.0.1:8080/x?token=t ", "http://127.0.0.1:8080/x?token=t", false},
		{"slack:https://chat.example/hooks/abc", "https://chat.example/hooks/abc", true},
		{"slack: https://chat.example/hooks/abc", "https://chat.example/hooks/abc", true},
		{"https://hooks.slack.com/services/T0/B0/XYZ", "https://hooks.slack.com/services/T0/B0/XYZ", true},
		{"HTTPS://HOOKS.SLACK.COM/services/T0/B0/XYZ", "https://HOOKS.SLACK.COM/services/T0/B0/XYZ", true},
		{"https://hooks.slack.com.evil.example/x", "https://hooks.slack.com.evil.example/x", false},
		{"https://evil.example/hooks.slack.com", "https://evil.example/hooks.slack.com", false},
	}
	for _, tt := range tests {
		got, err := ParseTarget(tt.in)
		if err != nil {
			t.Errorf("ParseTarget(%q): %v", tt.in, err)
			continue
		}
		if want := (Target{URL: tt.url, Slack: tt.slack}); got != want {
			t.Errorf("ParseTarget(%q) = %+v, want %+v", tt.in, got, want)
		}
	}
}

func TestParseTargetErrors(t *testing.T) {
	tests := []struct {
		in   string
		want string // part of the error
	}{
		{"", "empty"},
		{"slack:", "empty"},
		{"ftp://example.com/x", `scheme "ftp"`},
		{"slack:ftp://example.com/x", `scheme "ftp"`},
		{"mailto:ops@example.com", `scheme "mailto"`},
		{"https://", "no host"},
		{"http:///path", "no host"},
		{"https://:443/x", "no host"},
		{"http:example.com", "no host"},
		{"https://ops:hunter2@example.com/x", "user name or password"},
		{"https://ops@example.com/x", "user name or password"},
		{"example.com/hook", "no scheme"},
		{"not a url", "no scheme"},
		{"http://[::1/x", "not a URL"},
		{"https://example.com/%zz", "not a URL"},
		{"\x7fhttps://example.com", "not a URL"},
	}
	for _, tt := range tests {
		_, err := ParseTarget(tt.in)
		if err == nil {
			t.Errorf("ParseTarget(%q) succeeded", tt.in)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseTarget(%q) = %q, want it to mention %q", tt.in, err, tt.want)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("ParseTarget(%q) = %q repeats the password", tt.in, err)
		}
	}
}

func TestSlackText(t *testing.T) {
	base := Event{ID: "c1", Ticket: "OPS-17", Summary: "close stale orders", Scope: "orders", Risk: "high",
		RowsAffected: 3, Link: "https://airlock.example/changes/c1", Reviewer: "alice"}
	tests := []struct {
		typ  string
		edit func(*Event)
		want []string
	}{
		{EventPending, func(e *Event) { e.Reviewer = "" }, []string{
			":hourglass: Change waits for review — scope *orders*, risk *high*, 3 rows: <https://airlock.example/changes/c1|OPS-17: close stale orders>"}},
		{EventApproved, func(e *Event) { e.Approvals, e.Required = 1, 2 }, []string{"Approval 1 of 2 recorded by *alice*", "another reviewer"}},
		{EventCommitted, nil, []string{":white_check_mark: Change committed by *alice* — "}},
		{EventRolledBack, func(e *Event) { e.Reason = "wrong table" }, []string{"rolled back by *alice*", "(reason: wrong table)"}},
		{EventExpired, func(e *Event) { e.RowsAffected = 1 }, []string{"expired", "1 row:"}},
		{EventDrifted, nil, []string{":warning:", "drifted", "nothing was committed"}},
		{EventBranchMerged, func(e *Event) { e.Mode = "branch" }, []string{"Branch merged by *alice*", "mode *branch*"}},
		{EventBranchDiscarded, nil, []string{"Branch discarded by *alice*"}},
		{"change.someday", func(e *Event) { e.Ticket, e.Summary, e.Link = "", "", "" }, []string{":bell: change.someday", "3 rows: c1"}},
	}
	for _, tt := range tests {
		ev := base
		ev.Type = tt.typ
		if tt.edit != nil {
			tt.edit(&ev)
		}
		got := slackText(ev)
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: text %q lacks %q", tt.typ, got, w)
			}
		}
	}
}

// Nothing the agent writes reaches Slack as markup or as hidden text.
func TestSlackTextEscapesAgentText(t *testing.T) {
	ev := Event{
		Type:     EventRolledBack,
		ID:       "c1",
		Ticket:   "<@U024BE7LH>",
		Summary:  "<!channel> see <http://evil.example|the diff> & approve \u202Eexe.txt\u200B\nnext line",
		Scope:    "orders<!here>",
		Reviewer: "<!subteam^S123>",
		Reason:   "a > b & c < d",
		Link:     "https://airlock.example/changes/c1?tab=sql&x=1|y>z",
	}
	got := slackText(ev)
	if strings.Count(got, "<") != 1 || strings.Count(got, ">") != 1 {
		t.Errorf("text has markup besides the review link: %q", got)
	}
	if !strings.HasPrefix(got[strings.Index(got, "<"):], "<https://airlock.example/changes/c1?tab=sql&amp;x=1%7Cy%3Ez|") {
		t.Errorf("review link mangled: %q", got)
	}
	for _, w := range []string{
		"&lt;!channel&gt;", "&lt;http://evil.example|the diff&gt;", "&amp; approve", `\u{202E}exe.txt\u{200B}\nnext line`,
		"&lt;@U024BE7LH&gt;", "*orders&lt;!here&gt;*", "&lt;!subteam^S123&gt;", "a &gt; b &amp; c &lt; d",
	} {
		if !strings.Contains(got, w) {
			t.Errorf("text lacks %q: %q", w, got)
		}
	}
	if strings.ContainsAny(got, "\u202e\u200b\n") {
		t.Errorf("text has raw hidden characters or a newline: %q", got)
	}

	long := slackText(Event{Type: EventPending, Summary: strings.Repeat("x", 1000)})
	if len(long) > 400 || !strings.Contains(long, "…") {
		t.Errorf("long summary not clipped: %d bytes", len(long))
	}
}

// A slack: target gets {"text": ...}, signed like any other delivery.
func TestSlackDelivery(t *testing.T) {
	rc := newReceiver(t, nil)
	n := start(t, Config{Targets: []Target{target(t, "slack:"+rc.srv.URL+"/services/T/B/X")}})
	ev := Event{Type: EventPending, ID: "c1", Summary: "<!channel>", Scope: "orders", RowsAffected: 2}
	n.Notify(ev)
	r := next(t, rc.reqs, "Slack delivery")
	h := r.header
	if err := Verify(testSecret, h.Get("X-Airlock-Timestamp"), h.Get("X-Airlock-Signature"), r.body, time.Now(), time.Minute); err != nil {
		t.Errorf("Verify: %v", err)
	}
	if ct := h.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var msg map[string]string
	if err := json.Unmarshal(r.body, &msg); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
	if len(msg) != 1 || msg["text"] != slackText(ev) {
		t.Errorf("body %s, want only text %q", r.body, slackText(ev))
	}
}

// Close waits for what is queued; afterwards Notify does nothing.
func TestCloseDrains(t *testing.T) {
	g := newGate(t)
	rc := newReceiver(t, g.wait)
	n := start(t, Config{Targets: []Target{target(t, rc.srv.URL)}})
	const events = 20
	for i := range events {
		n.Notify(Event{Type: EventPending, ID: string(rune('a' + i))})
	}
	next(t, g.started, "first delivery in flight")

	closed := make(chan error, 1)
	go func() { closed <- closeNow(t, n, 5*time.Second) }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned %v with deliveries queued", err)
	case <-time.After(20 * time.Millisecond):
	}
	n.Notify(Event{Type: EventPending, ID: "after close began"})
	g.release()
	if err := next(t, closed, "Close"); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := rc.attempts.Load(); got != events {
		t.Errorf("%d deliveries, want %d", got, events)
	}
	for i := range events {
		var ev Event
		if err := json.Unmarshal((<-rc.reqs).body, &ev); err != nil {
			t.Fatal(err)
		}
		if want := string(rune('a' + i)); ev.ID != want {
			t.Errorf("delivery %d is %q, want %q (in order)", i, ev.ID, want)
		}
	}

	n.Notify(Event{Type: EventPending, ID: "after close"})
	if err := closeNow(t, n, time.Second); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if got := rc.attempts.Load(); got != events {
		t.Errorf("%d deliveries after Close, want %d", got, events)
	}

	var none *Notifier
	none.Notify(Event{Type: EventPending})
	if err := none.Close(context.Background()); err != nil {
		t.Errorf("nil Notifier Close: %v", err)
	}
}

// Close's deadline stops a retry that waits, and reports the event.
func TestCloseCancelsRetries(t *testing.T) {
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int64) {
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	fs := newFailures()
	n := start(t, Config{Targets: []Target{target(t, rc.srv.URL)}, Backoff: time.Hour, MaxBackoff: time.Hour, OnFailure: fs.record})
	n.Notify(Event{Type: EventPending, ID: "c1"})
	next(t, rc.reqs, "first attempt")
	began := time.Now()
	if err := closeNow(t, n, 50*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close = %v, want a deadline error", err)
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("Close took %v", took)
	}
	f := next(t, fs.ch, "failure report")
	if !errors.Is(f.err, errClosed) || f.ev.ID != "c1" {
		t.Errorf("OnFailure(%s, %v), want c1 closed", f.ev.ID, f.err)
	}
	if got := rc.attempts.Load(); got != 1 {
		t.Errorf("attempts = %d, want 1", got)
	}
}

// A failure event is never sent, so a callback passing it on cannot loop.
func TestDeliveryFailedNotSent(t *testing.T) {
	rc := newReceiver(t, nil)
	n := start(t, Config{Targets: []Target{target(t, rc.srv.URL)}})
	n.Notify(Event{Type: EventDeliveryFailed, ID: "f1"})
	n.Notify(Event{Type: EventPending, ID: "c1"})
	if err := closeNow(t, n, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := rc.attempts.Load(); got != 1 {
		t.Fatalf("%d deliveries, want 1", got)
	}
	if h := (<-rc.reqs).header.Get("X-Airlock-Event"); h != EventPending {
		t.Errorf("delivered %q", h)
	}
}

// Logs and errors name a target without its secrets.
func TestFailuresDoNotLeakURLSecrets(t *testing.T) {
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int64) { w.WriteHeader(http.StatusBadRequest) })
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()

	var logs bytes.Buffer
	fs := newFailures()
	n := start(t, Config{
		Targets: []Target{
			target(t, rc.srv.URL+"/hook?token=SECRET1"),
			target(t, down.URL+"/hook?token=SECRET2#SECRET3"),
			target(t, "slack:"+rc.srv.URL+"/services/T0/B0/SECRET4"),
		},
		MaxAttempts: 2,
		Logger:      slog.New(slog.NewTextHandler(&logs, nil)),
		OnFailure:   fs.record,
	})
	n.Notify(Event{Type: EventPending, ID: "c1"})
	if err := closeNow(t, n, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	got := fs.drain()
	if len(got) != 3 {
		t.Fatalf("%d failures, want 3", len(got))
	}
	text := logs.String()
	for _, f := range got {
		text += "\n" + f.err.Error()
	}
	if strings.Contains(text, "SECRET") {
		t.Errorf("secret in logs or errors:\n%s", text)
	}
	for _, w := range []string{rc.srv.URL + "/hook", down.URL + "/hook", rc.srv.URL + "/…", "attempt=1", "event=change.pending", "id=c1"} {
		if !strings.Contains(text, w) {
			t.Errorf("logs lack %q:\n%s", w, text)
		}
	}
}

func TestNew(t *testing.T) {
	if _, err := New(Config{}); err == nil || !strings.Contains(err.Error(), "Secret") {
		t.Errorf("New without a secret: %v", err)
	}
	if _, err := New(Config{Secret: testSecret, QueueSize: -1}); err == nil {
		t.Error("New with a negative QueueSize succeeded")
	}
	if _, err := New(Config{Secret: testSecret, Targets: []Target{{URL: "ftp://example.com"}}}); err == nil {
		t.Error("New with an ftp target succeeded")
	}

	n, err := New(Config{Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())
	c := n.cfg
	if c.MaxAttempts != 6 || c.Backoff != time.Second || c.MaxBackoff != time.Minute || c.QueueSize != 256 || c.Logger == nil || c.Now == nil {
		t.Errorf("defaults: %+v", c)
	}
	if c.Client.Timeout != 10*time.Second {
		t.Errorf("default client timeout %v", c.Client.Timeout)
	}
	if c.Client.CheckRedirect == nil || c.Client.CheckRedirect(nil, nil) != http.ErrUseLastResponse {
		t.Error("default client follows redirects")
	}
	n.Notify(Event{Type: EventPending}) // no targets: nothing to do, nothing breaks
}

func TestVerify(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	body := []byte(`{"type":"change.pending","id":"c1"}`)
	ts := "1700000000"
	good := sign(testSecret, ts, body)
	tests := []struct {
		name      string
		secret    []byte
		ts, sig   string
		body      []byte
		now       time.Time
		wantErr   error
		wantMatch string
	}{
		{name: "valid", secret: testSecret, ts: ts, sig: good, body: body, now: now},
		{name: "valid, clock a little ahead", secret: testSecret, ts: ts, sig: good, body: body, now: now.Add(4 * time.Minute)},
		{name: "wrong secret", secret: []byte("other"), ts: ts, sig: good, body: body, now: now, wantErr: errMismatch},
		{name: "tampered body", secret: testSecret, ts: ts, sig: good, body: []byte(`{"type":"change.committed","id":"c1"}`), now: now, wantErr: errMismatch},
		{name: "timestamp swapped", secret: testSecret, ts: "1700000001", sig: good, body: body, now: now, wantErr: errMismatch},
		{name: "stale", secret: testSecret, ts: ts, sig: good, body: body, now: now.Add(10 * time.Minute), wantErr: errStale, wantMatch: "old"},
		{name: "future", secret: testSecret, ts: ts, sig: good, body: body, now: now.Add(-10 * time.Minute), wantErr: errStale, wantMatch: "future"},
		{name: "no prefix", secret: testSecret, ts: ts, sig: strings.TrimPrefix(good, "sha256="), body: body, now: now, wantErr: errBadSignature},
		{name: "not hex", secret: testSecret, ts: ts, sig: "sha256=zz", body: body, now: now, wantErr: errBadSignature},
		{name: "empty signature", secret: testSecret, ts: ts, sig: "", body: body, now: now, wantErr: errBadSignature},
		{name: "truncated", secret: testSecret, ts: ts, sig: good[:len(good)-2], body: body, now: now, wantErr: errMismatch},
		{name: "bad timestamp", secret: testSecret, ts: "yesterday", sig: good, body: body, now: now, wantErr: errBadTimestamp},
		{name: "no secret", secret: nil, ts: ts, sig: good, body: body, now: now, wantErr: errNoSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.secret, tt.ts, tt.sig, tt.body, tt.now, 5*time.Minute)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Verify = %v, want %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), tt.wantMatch) {
				t.Errorf("Verify = %q, want it to mention %q", err, tt.wantMatch)
			}
		})
	}
}
