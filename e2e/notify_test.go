package e2e

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/pgtest"
	"github.com/airlock-dev/airlock/notify"
)

// Notifications through the built binary (docs/architecture.md, Reviewers):
// every new pending change, approval, decision and expiry reaches the
// webhook as a signed event, whichever process made it (the service, the
// review page, a reviewer's CLI on the database); a receiver that is down
// or hangs never slows the agent.

const notifySecret = "notify-secret-0123456789abcdef0123456789abcdef"

// receiver is a webhook that checks every delivery's signature.
type receiver struct {
	t      *testing.T
	mu     sync.Mutex
	events []notify.Event
	bad    []string
	srv    *httptest.Server
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		err := notify.Verify([]byte(notifySecret), req.Header.Get("X-Airlock-Timestamp"), req.Header.Get("X-Airlock-Signature"), body, time.Now(), 5*time.Minute)
		r.mu.Lock()
		defer r.mu.Unlock()
		if err != nil {
			r.bad = append(r.bad, err.Error())
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var ev notify.Event
		if err := json.Unmarshal(body, &ev); err != nil {
			r.bad = append(r.bad, "payload: "+err.Error())
			return
		}
		if req.Header.Get("X-Airlock-Event") != ev.Type {
			r.bad = append(r.bad, "X-Airlock-Event "+req.Header.Get("X-Airlock-Event")+" for "+ev.Type)
		}
		r.events = append(r.events, ev)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// await returns the first event of type typ about id, waiting up to 15 s.
func (r *receiver) await(typ, id string) notify.Event {
	r.t.Helper()
	var found *notify.Event
	eventually(15*time.Second, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		for i := range r.events {
			if r.events[i].Type == typ && r.events[i].ID == id {
				found = &r.events[i]
				return true
			}
		}
		return false
	})
	if found == nil {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.t.Fatalf("no %s event for %s; got %+v (bad deliveries: %v)", typ, id, r.events, r.bad)
	}
	return *found
}

func (r *receiver) count(typ, id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, ev := range r.events {
		if ev.Type == typ && ev.ID == id {
			n++
		}
	}
	return n
}

func TestNotifications(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDatabase(t)
	scope := reviewScopeFile(t, "rv_notify", 2)
	rcv := newReceiver(t)
	endpoint, base := startReview(t, dbURL, scope, []string{"AIRLOCK_NOTIFY_SECRET=" + notifySecret},
		"--notify-webhook", rcv.srv.URL+"/hook", "--public-url", "https://airlock.example.com")
	agent := httpClient(t, endpoint, tokenA)
	api := base + "/review/api/"

	id := applyChange(t, agent, "OPS-401", "UPDATE orders SET status = 'refunded' WHERE id BETWEEN 31 AND 32")
	ev := rcv.await(notify.EventPending, id)
	if ev.Ticket != "OPS-401" || ev.Summary != "e2e OPS-401" || ev.Scope != "rv_notify" || ev.RowsAffected != 2 ||
		ev.Risk == "" || ev.Status != "pending" || ev.Required != 2 || ev.Link != "https://airlock.example.com/review/changes/"+id {
		t.Fatalf("pending event: %+v", ev)
	}
	if st, body := reviewAPI(t, "POST", api+"changes/"+id+"/commit", aliceToken, nil); st != 200 {
		t.Fatalf("alice: %d %v", st, body)
	}
	ev = rcv.await(notify.EventApproved, id)
	if ev.Reviewer != "alice" || ev.Approvals != 1 || ev.Required != 2 {
		t.Fatalf("approved event: %+v", ev)
	}
	if st, body := reviewAPI(t, "POST", api+"changes/"+id+"/commit", bobToken, nil); st != 200 {
		t.Fatalf("bob: %d %v", st, body)
	}
	if ev = rcv.await(notify.EventCommitted, id); ev.Reviewer != "bob" || ev.Status != "committed" {
		t.Fatalf("committed event: %+v", ev)
	}

	// A decision made elsewhere (a reviewer's CLI on the database) is
	// announced by the database and notified all the same.
	id2 := applyChange(t, agent, "OPS-402", "DELETE FROM orders WHERE id = 3033")
	rcv.await(notify.EventPending, id2)
	if out, code := reviewer(t, dbURL, "rollback", id2, "--reviewer", "carol", "--reason", "not today"); code != 0 {
		t.Fatalf("rollback (%d): %s", code, out)
	}
	if ev = rcv.await(notify.EventRolledBack, id2); ev.Reviewer != "carol" || ev.Reason != "not today" {
		t.Fatalf("rolled back event: %+v", ev)
	}

	// Expiry, by the reaper.
	id3 := applyChange(t, agent, "OPS-403", "UPDATE orders SET status = 'paid' WHERE id = 34")
	rcv.await(notify.EventPending, id3)
	conn := pgtest.Connect(t, dbURL)
	if _, err := conn.Exec(t.Context(), "UPDATE airlock.changes SET expires_at = now() - interval '1 second' WHERE id = $1", id3); err != nil {
		t.Fatal(err)
	}
	if out, code := reviewer(t, dbURL, "reap"); code != 0 {
		t.Fatalf("reap (%d): %s", code, out)
	}
	rcv.await(notify.EventExpired, id3)

	// A NOTIFY anyone can send is a hint, not an event: a forged one for a
	// committed change sends nothing new, one for no change nothing at all.
	if _, err := conn.Exec(t.Context(), `SELECT pg_notify('airlock_events', json_build_object('kind', 'change', 'id', $1::text, 'status', 'committed')::text),
		pg_notify('airlock_events', '{"kind":"change","id":"00000000-0000-0000-0000-000000000000","status":"committed"}')`, id); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if n := rcv.count(notify.EventCommitted, id); n != 1 {
		t.Fatalf("%d committed events for %s after a forged NOTIFY, want 1", n, id)
	}
	if n := rcv.count(notify.EventCommitted, "00000000-0000-0000-0000-000000000000"); n != 0 {
		t.Fatal("a forged NOTIFY for no change was notified")
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.bad) > 0 {
		t.Fatalf("deliveries that failed the receiver's checks: %v", rcv.bad)
	}
}

// TestNotificationsNeverSlowTheAgent: with one webhook that hangs, one
// that is down and one that refuses, the agent's calls take as long as
// without any, the healthy receiver still gets its events, and the
// refused delivery is audited.
func TestNotificationsNeverSlowTheAgent(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDatabase(t)
	scope := reviewScopeFile(t, "rv_notify_down", 1)
	hang := make(chan struct{})
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hang }))
	t.Cleanup(func() { close(hang); hanging.Close() })
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadRequest) }))
	t.Cleanup(refusing.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String() + "/hook"
	ln.Close()
	rcv := newReceiver(t)
	endpoint, _ := startReview(t, dbURL, scope, []string{"AIRLOCK_NOTIFY_SECRET=" + notifySecret},
		"--notify-webhook", hanging.URL, "--notify-webhook", down, "--notify-webhook", refusing.URL+"/x?key=secret-in-query",
		"--notify-webhook", rcv.srv.URL)
	agent := httpClient(t, endpoint, tokenA)

	var ids []string
	start := time.Now()
	for i := range 5 {
		ids = append(ids, applyChange(t, agent, "OPS-5"+string(rune('0'+i)), "UPDATE orders SET status = 'paid' WHERE id = 50"))
	}
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Fatalf("5 applies took %s with broken webhooks", elapsed)
	}
	for _, id := range ids {
		rcv.await(notify.EventPending, id)
	}
	var reason string
	eventually(15*time.Second, func() bool {
		reason = ""
		_ = pgtest.Connect(t, dbURL).QueryRow(t.Context(),
			"SELECT coalesce(string_agg(reason, ' | '), '') FROM airlock.audit_log WHERE tool = 'notify' AND decision = 'error'").Scan(&reason)
		return reason != ""
	})
	if reason == "" {
		t.Fatal("a refused delivery is not in the audit log")
	}
	if strings.Contains(reason, "secret-in-query") {
		t.Fatalf("the audit log holds the webhook's query: %s", reason)
	}
}
