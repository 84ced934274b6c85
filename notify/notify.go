package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/airlock-dev/airlock/internal/safetext"
)

// Event types.
const (
	EventPending         = "change.pending"  // a new change waits for review
	EventApproved        = "change.approved" // one approval recorded, more needed (two-person rule)
	EventCommitted       = "change.committed"
	EventRolledBack      = "change.rolled_back"
	EventExpired         = "change.expired"
	EventDrifted         = "change.drifted"
	EventBranchMerged    = "branch.merged"
	EventBranchDiscarded = "branch.discarded"
	// EventDeliveryFailed is for an OnFailure callback that records the
	// failure elsewhere (an audit log). Notify ignores events of this
	// type, so that a callback passing one on cannot start a loop of
	// failures about failures.
	EventDeliveryFailed = "notify.failed"
)

// Event is what a receiver gets. The strings Ticket, Summary, Reason,
// Reviewer and Scope may come from the agent: a receiver that shows them
// to people must render them as untrusted text.
type Event struct {
	Type         string    `json:"type"`
	ID           string    `json:"id"` // change id or branch id
	Ticket       string    `json:"ticket,omitempty"`
	Summary      string    `json:"summary,omitempty"`
	Scope        string    `json:"scope"`
	Mode         string    `json:"mode,omitempty"`
	Risk         string    `json:"risk,omitempty"`
	RowsAffected int64     `json:"rows_affected"`
	Status       string    `json:"status"`
	Reviewer     string    `json:"reviewer,omitempty"`
	Reason       string    `json:"reason,omitempty"`
	Approvals    int       `json:"approvals,omitempty"` // recorded so far
	Required     int       `json:"approvals_required,omitempty"`
	Link         string    `json:"link,omitempty"` // the review page URL of the change
	Time         time.Time `json:"time"`
}

// Target is one webhook. Slack selects Slack's message format.
type Target struct {
	URL   string
	Slack bool
}

// slackPrefix marks a Slack target whose URL is not on hooks.slack.com
// (a proxy, Slack-compatible chat servers).
const slackPrefix = "slack:"

// ParseTarget reads a target as an operator writes it: a URL is a generic
// JSON webhook, "slack:URL" or a URL on hooks.slack.com is a Slack one.
// Only http and https URLs with a host are accepted, and no userinfo:
// credentials in a URL end up in logs and process listings. Errors do not
// repeat the URL, whose path or query may be a secret (a Slack webhook's
// path is).
func ParseTarget(s string) (Target, error) {
	s = strings.TrimSpace(s)
	slack := false
	if rest, ok := strings.CutPrefix(s, slackPrefix); ok {
		slack = true
		s = strings.TrimSpace(rest)
	}
	u, err := checkURL(s)
	if err != nil {
		return Target{}, err
	}
	if isSlackHost(u.Hostname()) {
		slack = true
	}
	return Target{URL: u.String(), Slack: slack}, nil
}

// checkURL holds the rules of ParseTarget, which New applies as well to
// targets built by hand.
func checkURL(s string) (*url.URL, error) {
	if s == "" {
		return nil, errors.New("notify target: empty URL")
	}
	u, err := url.Parse(s)
	if err != nil {
		// url.Error repeats the whole URL; keep only the reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("notify target: not a URL: %w", err)
	}
	switch u.Scheme {
	case "http", "https":
	case "":
		return nil, errors.New("notify target: no scheme, want an http:// or https:// URL")
	default:
		return nil, fmt.Errorf("notify target: scheme %q not supported, want http or https", u.Scheme)
	}
	if u.Opaque != "" || u.Hostname() == "" {
		return nil, fmt.Errorf("notify target: %s URL has no host", u.Scheme)
	}
	if u.User != nil {
		return nil, errors.New("notify target: URL must not contain a user name or password; put a token in the path or query instead")
	}
	return u, nil
}

// logURL is how a target appears in logs and errors: without query and
// fragment, which often carry a token, and for Slack without the path,
// which is the webhook's secret.
func logURL(t Target) string {
	u, err := url.Parse(t.URL)
	if err != nil {
		return "(invalid URL)"
	}
	if t.Slack && u.Path != "" && u.Path != "/" {
		return u.Scheme + "://" + u.Host + "/…"
	}
	u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = "", false, "", ""
	return u.String()
}

// Config configures a Notifier. Zero values select the defaults.
type Config struct {
	Targets []Target
	// Secret is the HMAC-SHA256 key receivers verify deliveries with;
	// required.
	Secret []byte
	// Client makes the requests. The default has a 10s timeout and follows
	// no redirects: a redirect would carry a signed event to a host the
	// operator did not configure. A Client without a timeout lets a
	// hanging receiver stall its target's queue until Close.
	Client *http.Client
	// MaxAttempts is how many times one event is tried; default 6.
	MaxAttempts int
	// Backoff is the delay before the first retry, default 1s; it doubles
	// with every retry, ±20% jitter so that targets failing together do
	// not retry together, up to MaxBackoff (default 1m). A Retry-After
	// header, capped at MaxBackoff, replaces it.
	Backoff    time.Duration
	MaxBackoff time.Duration
	// QueueSize is how many events wait per target, default 256. An event
	// that finds its target's queue full is dropped and reported.
	QueueSize int
	// Logger gets a line for every failed attempt and every event given
	// up; default slog.Default().
	Logger *slog.Logger
	// OnFailure, if set, is called when an event is given up on or
	// dropped, never from Notify's caller: from the target's delivery
	// goroutine, or for drops from one reporting goroutine. Calls may
	// therefore run concurrently, and a slow callback delays its target's
	// deliveries (never Notify).
	OnFailure func(t Target, ev Event, err error)
	// Now is the clock, for tests; default time.Now.
	Now func() time.Time
}

const (
	defaultTimeout     = 10 * time.Second
	defaultMaxAttempts = 6
	defaultBackoff     = time.Second
	defaultMaxBackoff  = time.Minute
	defaultQueueSize   = 256
	// maxResponseBody is how much of a response is read: enough for an
	// error message and to let the connection be reused, not so much that
	// a receiver can make us buffer a lot.
	maxResponseBody = 4 << 10
	userAgent       = "airlock-notify/1"
)

var (
	errQueueFull = errors.New("queue full, event dropped")
	errClosed    = errors.New("notifier closed before the event was delivered")
)

// statusError is a response that was not 2xx.
type statusError struct {
	code int
	body string // the start of the response body, rendered safe to print
}

func (e *statusError) Error() string {
	msg := fmt.Sprintf("receiver answered %d %s", e.code, http.StatusText(e.code))
	if e.code >= 300 && e.code < 400 {
		msg += " (redirects are not followed)"
	}
	if e.body != "" {
		msg += ": " + e.body
	}
	return msg
}

// Notifier delivers events to its targets in the background. Its methods
// are safe for concurrent use, and on a nil *Notifier they do nothing, so
// that callers need no check when notifications are off.
type Notifier struct {
	cfg     Config
	workers []*worker

	// mu orders Notify's sends against Close's closing of the channels.
	mu     sync.RWMutex
	closed bool
	// drops holds dropped events until they are reported. Its room is
	// bounded too: beyond it, a drop is only counted (lost) and logged.
	drops chan drop
	lost  atomic.Int64

	ctx       context.Context // cancelled when Close gives up waiting
	cancel    context.CancelFunc
	closeOnce sync.Once
	wg        sync.WaitGroup
	done      chan struct{} // closed when every goroutine has returned
}

type worker struct {
	n      *Notifier
	target Target
	logURL string
	queue  chan Event
}

// drop is an event a full queue refused. It is reported from a goroutine
// of the Notifier, since OnFailure may be slow and Notify must not be.
type drop struct {
	w  *worker
	ev Event
}

// New starts a Notifier with one delivery goroutine per target. Close
// stops them.
func New(cfg Config) (*Notifier, error) {
	if len(cfg.Secret) == 0 {
		return nil, errors.New("notify: Config.Secret is empty: receivers could not tell airlock's events from forged ones")
	}
	if cfg.MaxAttempts < 0 || cfg.Backoff < 0 || cfg.MaxBackoff < 0 || cfg.QueueSize < 0 {
		return nil, errors.New("notify: MaxAttempts, Backoff, MaxBackoff and QueueSize must not be negative")
	}
	// Copies, so that a caller reusing its slices cannot race the workers.
	cfg.Secret = bytes.Clone(cfg.Secret)
	cfg.Targets = append([]Target(nil), cfg.Targets...)
	for i, t := range cfg.Targets {
		u, err := checkURL(t.URL)
		if err != nil {
			return nil, fmt.Errorf("notify: target %d: %w", i+1, err)
		}
		cfg.Targets[i].URL = u.String()
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{
			Timeout: defaultTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = defaultMaxAttempts
	}
	if cfg.Backoff == 0 {
		cfg.Backoff = defaultBackoff
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = defaultMaxBackoff
	}
	if cfg.QueueSize == 0 {
		cfg.QueueSize = defaultQueueSize
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}

	n := &Notifier{
		cfg:   cfg,
		drops: make(chan drop, max(defaultQueueSize, cfg.QueueSize*len(cfg.Targets))),
		done:  make(chan struct{}),
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	for _, t := range cfg.Targets {
		w := &worker{n: n, target: t, logURL: logURL(t), queue: make(chan Event, cfg.QueueSize)}
		n.workers = append(n.workers, w)
		n.wg.Add(1)
		go w.run()
	}
	n.wg.Add(1)
	go n.reportDrops()
	go func() {
		n.wg.Wait()
		n.cancel()
		close(n.done)
	}()
	return n, nil
}

// Notify queues ev for every target and returns at once; it never waits
// on the network nor on OnFailure. A zero ev.Time becomes now. After
// Close, and for events of type EventDeliveryFailed, it does nothing.
func (n *Notifier) Notify(ev Event) {
	if n == nil || ev.Type == EventDeliveryFailed {
		return
	}
	if ev.Time.IsZero() {
		ev.Time = n.cfg.Now()
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.closed {
		return
	}
	for _, w := range n.workers {
		select {
		case w.queue <- ev:
		default:
			select {
			case n.drops <- drop{w, ev}:
			default:
				n.lost.Add(1)
			}
		}
	}
}

// Close stops accepting events and waits for the queued ones to be
// delivered (or given up on) until ctx ends. Then it cancels the requests
// in flight, stops their retries, reports what was left as failed and
// returns ctx's error. Calling it again waits the same way.
func (n *Notifier) Close(ctx context.Context) error {
	if n == nil {
		return nil
	}
	n.closeOnce.Do(func() {
		n.mu.Lock()
		n.closed = true
		for _, w := range n.workers {
			close(w.queue)
		}
		close(n.drops)
		n.mu.Unlock()
	})
	select {
	case <-n.done:
		return nil
	case <-ctx.Done():
		n.cancel()
		<-n.done
		return fmt.Errorf("notify: close: undelivered events given up: %w", ctx.Err())
	}
}

// fail logs that ev will not reach w's target and tells OnFailure.
func (n *Notifier) fail(w *worker, ev Event, err error) {
	n.cfg.Logger.Error("notify: event not delivered",
		"url", w.logURL, "event", safetext.LineMax(ev.Type, 100), "id", safetext.LineMax(ev.ID, 100), "error", err)
	if n.cfg.OnFailure != nil {
		n.cfg.OnFailure(w.target, ev, err)
	}
}

func (n *Notifier) reportDrops() {
	defer n.wg.Done()
	for d := range n.drops {
		n.fail(d.w, d.ev, fmt.Errorf("notify %s: %w (%d waiting)", d.w.logURL, errQueueFull, n.cfg.QueueSize))
		n.reportLost()
	}
	n.reportLost()
}

// reportLost logs the drops that came too fast even to be reported one by
// one, which is all that can be said of them.
func (n *Notifier) reportLost() {
	if k := n.lost.Swap(0); k > 0 {
		n.cfg.Logger.Error("notify: events dropped, queues full, not reported to OnFailure", "count", k)
	}
}

func (w *worker) run() {
	defer w.n.wg.Done()
	for ev := range w.queue {
		if err := w.deliver(ev); err != nil {
			w.n.fail(w, ev, err)
		}
	}
}

// deliver tries ev until it is delivered, fails for good, runs out of
// attempts or the Notifier is cancelled.
func (w *worker) deliver(ev Event) error {
	ctx := w.n.ctx
	if ctx.Err() != nil {
		return fmt.Errorf("notify %s: %w: %w", w.logURL, errClosed, ctx.Err())
	}
	if strings.ContainsFunc(ev.Type, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		// It cannot travel in X-Airlock-Event, and retrying will not help.
		return fmt.Errorf("notify %s: event type %s has control characters", w.logURL, safetext.Line(ev.Type))
	}
	var body []byte
	var err error
	if w.target.Slack {
		body, err = slackBody(ev)
	} else {
		body, err = jsonBody(ev)
	}
	if err != nil {
		return fmt.Errorf("notify %s: encode %s event: %w", w.logURL, ev.Type, err)
	}
	delivery := uuid.NewString()
	for attempt := 1; ; attempt++ {
		retry, wait, err := w.attempt(ctx, ev.Type, delivery, body)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("notify %s: %w: %w", w.logURL, errClosed, err)
		}
		if !retry {
			return fmt.Errorf("notify %s: attempt %d, not retried: %w", w.logURL, attempt, err)
		}
		if attempt >= w.n.cfg.MaxAttempts {
			return fmt.Errorf("notify %s: giving up after %d attempts: %w", w.logURL, attempt, err)
		}
		if wait < 0 {
			wait = w.n.backoff(attempt)
		}
		w.n.cfg.Logger.Warn("notify: delivery attempt failed, will retry",
			"url", w.logURL, "event", safetext.LineMax(ev.Type, 100), "id", safetext.LineMax(ev.ID, 100),
			"delivery", delivery, "attempt", attempt, "retry_in", wait, "error", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("notify %s: %w: %w", w.logURL, errClosed, err)
		case <-t.C:
		}
	}
}

// attempt posts body once. It reports whether a failure is worth another
// try and how long the receiver asked to wait (negative: no preference).
func (w *worker) attempt(ctx context.Context, typ, delivery string, body []byte) (retry bool, wait time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.target.URL, bytes.NewReader(body))
	if err != nil {
		return false, -1, fmt.Errorf("build request: %w", err)
	}
	// The timestamp is per attempt, so that a receiver's tolerance for
	// stale timestamps (which stops replays) does not reject late retries.
	ts := strconv.FormatInt(w.n.cfg.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set(headerEvent, typ)
	req.Header.Set(headerDelivery, delivery)
	req.Header.Set(headerTimestamp, ts)
	req.Header.Set(headerSignature, sign(w.n.cfg.Secret, ts, body))

	resp, err := w.n.cfg.Client.Do(req)
	if err != nil {
		// url.Error repeats the full URL, query and all.
		var ue *url.Error
		if errors.As(err, &ue) {
			ue.URL = w.logURL
		}
		return true, -1, err
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return false, -1, nil
	}
	err = &statusError{code: resp.StatusCode, body: safetext.LineMax(strings.TrimSpace(string(head)), 200)}
	switch {
	case resp.StatusCode == http.StatusRequestTimeout,
		resp.StatusCode == http.StatusTooManyRequests,
		resp.StatusCode >= 500 && resp.StatusCode < 600:
		wait = -1
		if d, ok := retryAfter(resp.Header.Get("Retry-After"), w.n.cfg.Now()); ok {
			wait = min(d, w.n.cfg.MaxBackoff)
		}
		return true, wait, err
	}
	// Anything else (4xx, a redirect) will not get better by asking again.
	return false, -1, err
}

// backoff is the delay after failed attempt number attempt (from 1).
func (n *Notifier) backoff(attempt int) time.Duration {
	d := n.cfg.Backoff
	for i := 1; i < attempt && d < n.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, n.cfg.MaxBackoff)
	d = time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
	return min(d, n.cfg.MaxBackoff)
}

// retryAfter reads a Retry-After header: delay seconds or an HTTP date.
func retryAfter(h string, now time.Time) (time.Duration, bool) {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(h, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		return time.Duration(min(secs, math.MaxInt64/int64(time.Second))) * time.Second, true
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(0, t.Sub(now)), true
	}
	return 0, false
}

// jsonBody is the generic webhook's body: the event as it is, with the
// agent's strings exactly as the agent wrote them (JSON escapes what it
// must); rendering them safely is the receiver's business.
func jsonBody(ev Event) ([]byte, error) {
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode JSON: %w", err)
	}
	return b, nil
}
