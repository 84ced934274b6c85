package reviewweb

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/time/rate"

	"github.com/airlock-dev/airlock/review"
)

// Prefix is the path everything of the review page is under.
const Prefix = "/review"

// Config configures the review page.
type Config struct {
	// Store decides on changes; it runs on Pool, the review page's
	// reviewer login.
	Store *review.Store
	Pool  *pgxpool.Pool
	// Reviewers are the named reviewer tokens (ParseReviewers).
	Reviewers []Reviewer
	// AgentToken reports whether a presented bearer token is one of the
	// agents': such a request gets a 401 that says so.
	AgentToken func(token string) bool
	// Secure marks the session cookie Secure: set it when the service
	// serves TLS (or sits behind a proxy that does).
	Secure bool
	// SessionTTL is how long a sign-in lasts (default 12h).
	SessionTTL time.Duration
	// Refresh is how often the pending list updates itself (default 5s).
	Refresh time.Duration
	Logger  *slog.Logger
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
	// Hosts are the Host headers, besides loopback names, accepted on a
	// loopback listener: the --public-url's host behind a local proxy.
	Hosts []string
}

// Handler serves the review page and its API.
type Handler struct {
	cfg      Config
	mux      *http.ServeMux
	sessions *sessions
	// signIns bounds sign-in attempts across all clients: a token is 256
	// bits, but nobody needs more than a few attempts a second.
	signIns *rate.Limiter
	log     *slog.Logger
}

// New returns the review page's handler for cfg.
func New(cfg Config) (*Handler, error) {
	if cfg.Store == nil || cfg.Pool == nil {
		return nil, errors.New("review page: no reviewer database connection")
	}
	if len(cfg.Reviewers) == 0 {
		return nil, errors.New("review page: no reviewer tokens (set AIRLOCK_REVIEWER_TOKENS=\"alice:TOKEN,bob:TOKEN\" or --reviewer-tokens-file)")
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.AgentToken == nil {
		cfg.AgentToken = func(string) bool { return false }
	}
	h := &Handler{
		cfg: cfg, mux: http.NewServeMux(), sessions: newSessions(cfg.SessionTTL),
		signIns: rate.NewLimiter(5, 20), log: cfg.Logger,
	}
	h.routes()
	return h, nil
}

// SameToken reports whether a reviewer token is also an agent token (a
// configuration serve refuses: the agent would hold a reviewer's name).
func SameToken(reviewers []Reviewer, agentTokens []string) (string, bool) {
	for _, t := range agentTokens {
		sum := sha256.Sum256([]byte(t))
		for _, r := range reviewers {
			if subtle.ConstantTimeCompare(sum[:], r.sum[:]) == 1 {
				return r.Name, true
			}
		}
	}
	return "", false
}

// reviewerKey carries the signed-in reviewer through a request.
type reviewerKey struct{}

// who is the reviewer a request acts for.
type who struct {
	name string
	sess *session // nil for bearer-token (API) requests
}

func reviewerOf(ctx context.Context) who {
	w, _ := ctx.Value(reviewerKey{}).(who)
	return w
}

func (h *Handler) routes() {
	m := h.mux
	// Pages.
	m.HandleFunc("GET "+Prefix+"/login", h.loginPage)
	m.HandleFunc("POST "+Prefix+"/login", h.login)
	m.Handle("GET "+Prefix+"/static/", http.StripPrefix(Prefix+"/static/", staticHandler()))
	m.Handle("POST "+Prefix+"/logout", h.page(h.logout))
	m.Handle("GET "+Prefix+"/{$}", h.page(h.pendingPage))
	m.Handle("GET "+Prefix+"/pending-rows", h.page(h.pendingRows))
	m.Handle("GET "+Prefix+"/changes/{id}", h.page(h.changePage))
	m.Handle("POST "+Prefix+"/changes/{id}/approve", h.page(h.approveForm))
	m.Handle("POST "+Prefix+"/changes/{id}/reject", h.page(h.rejectForm))
	m.Handle("POST "+Prefix+"/changes/{id}/revert", h.page(h.revertForm))
	m.Handle("GET "+Prefix+"/branches", h.page(h.branchesPage))
	m.Handle("GET "+Prefix+"/branches/{id}", h.page(h.branchPage))
	m.Handle("POST "+Prefix+"/branches/{id}/merge", h.page(h.mergeForm))
	m.Handle("POST "+Prefix+"/branches/{id}/discard", h.page(h.discardForm))
	m.Handle("GET "+Prefix+"/audit", h.page(h.auditPage))
	// The JSON API.
	m.Handle("GET "+Prefix+"/api/whoami", h.api(h.apiWhoami))
	m.Handle("GET "+Prefix+"/api/changes", h.api(h.apiChanges))
	m.Handle("GET "+Prefix+"/api/changes/{id}", h.api(h.apiChange))
	m.Handle("POST "+Prefix+"/api/changes/{id}/commit", h.api(h.apiCommit))
	m.Handle("POST "+Prefix+"/api/changes/{id}/rollback", h.api(h.apiRollback))
	m.Handle("POST "+Prefix+"/api/changes/{id}/revert", h.api(h.apiRevert))
	m.Handle("GET "+Prefix+"/api/branches", h.api(h.apiBranches))
	m.Handle("GET "+Prefix+"/api/branches/{id}", h.api(h.apiBranch))
	m.Handle("POST "+Prefix+"/api/branches/{id}/merge", h.api(h.apiMerge))
	m.Handle("POST "+Prefix+"/api/branches/{id}/discard", h.api(h.apiDiscard))
	m.Handle("GET "+Prefix+"/api/audit", h.api(h.apiAudit))
	m.HandleFunc(Prefix+"/api/", func(w http.ResponseWriter, r *http.Request) {
		apiError(w, http.StatusNotFound, "not_found", "no such API path: see docs/architecture.md, Reviewers")
	})
}

// ServeHTTP applies what every response of the review page carries, then
// routes.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	// Nothing here is ever framed, cached, sent on as a referrer to
	// another site, or allowed to load anything but the page's own script
	// and style. (same-origin, not no-referrer: under no-referrer browsers
	// send "Origin: null" on the page's own form posts.)
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Cache-Control", "no-store")
	if rebound(r, h.cfg.Hosts) {
		h.log.Warn("refused a request to the review page under a foreign Host on a loopback listener (DNS rebinding?)", "host", r.Host, "remote", r.RemoteAddr)
		apiError(w, http.StatusMisdirectedRequest, "wrong_host", "this review page answers on its loopback address only under a loopback name or --public-url's host")
		return
	}
	if tok, ok := bearer(r); ok && h.cfg.AgentToken(tok) {
		h.log.Warn("refused an agent token on the review page", "path", r.URL.Path, "remote", r.RemoteAddr)
		w.Header().Set("WWW-Authenticate", `Bearer realm="airlock review"`)
		apiError(w, http.StatusUnauthorized, "agent_token", "an agent token cannot open the review page: reviewers sign in with a reviewer token of their own")
		return
	}
	h.mux.ServeHTTP(w, r)
}

// authenticate returns the reviewer a request is from: a bearer reviewer
// token, or a session cookie.
func (h *Handler) authenticate(r *http.Request) (who, bool) {
	if tok, ok := bearer(r); ok {
		rv, ok := match(h.cfg.Reviewers, tok)
		return who{name: rv.Name}, ok
	}
	c, err := r.Cookie(cookieName)
	if err != nil {
		return who{}, false
	}
	sess, ok := h.sessions.get(c.Value, h.cfg.Now())
	if !ok {
		return who{}, false
	}
	return who{name: sess.name, sess: sess}, true
}

// guard checks authentication and, for state-changing requests, the
// origin and the CSRF token; it reports what failed through fail.
func (h *Handler) guard(r *http.Request, fail func(status int, code, msg string)) (*http.Request, bool) {
	wh, ok := h.authenticate(r)
	if !ok {
		fail(http.StatusUnauthorized, "unauthorized", "sign in with your reviewer token")
		return r, false
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if !sameOrigin(r, h.cfg.Secure) {
			h.log.Warn("refused a cross-origin request on the review page", "path", r.URL.Path, "origin", r.Header.Get("Origin"), "reviewer", wh.name)
			fail(http.StatusForbidden, "cross_origin", "refused: this request did not come from the review page itself")
			return r, false
		}
		if wh.sess != nil && !csrfOK(r, wh.sess) {
			h.log.Warn("refused a request without the session's CSRF token", "path", r.URL.Path, "reviewer", wh.name)
			fail(http.StatusForbidden, "csrf", "refused: the form is stale or was not sent by the review page; reload the page and try again")
			return r, false
		}
	}
	return r.WithContext(context.WithValue(r.Context(), reviewerKey{}, wh)), true
}

// page wraps an HTML handler: unauthenticated browsers go to sign in.
func (h *Handler) page(next func(http.ResponseWriter, *http.Request)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, ok := h.guard(r, func(status int, code, msg string) {
			if status == http.StatusUnauthorized && r.Method == http.MethodGet {
				http.Redirect(w, r, Prefix+"/login", http.StatusSeeOther)
				return
			}
			h.renderError(w, r, status, msg)
		})
		if ok {
			next(w, r)
		}
	})
}

// api wraps a JSON handler.
func (h *Handler) api(next func(http.ResponseWriter, *http.Request)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, ok := h.guard(r, func(status int, code, msg string) {
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="airlock review"`)
			}
			apiError(w, status, code, msg)
		})
		if ok {
			next(w, r)
		}
	})
}

func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	if wh, ok := h.authenticate(r); ok && wh.sess != nil {
		http.Redirect(w, r, Prefix+"/", http.StatusSeeOther)
		return
	}
	h.render(w, r, http.StatusOK, "login", loginView{})
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r, h.cfg.Secure) {
		h.renderError(w, r, http.StatusForbidden, "refused: sign in from the review page itself")
		return
	}
	if !h.signIns.Allow() {
		w.Header().Set("Retry-After", "1")
		h.render(w, r, http.StatusTooManyRequests, "login", loginView{Error: "too many sign-in attempts; wait a moment"})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	tok := strings.TrimSpace(r.PostFormValue("token"))
	if h.cfg.AgentToken(tok) {
		h.log.Warn("refused an agent token at sign-in", "remote", r.RemoteAddr)
		h.render(w, r, http.StatusUnauthorized, "login", loginView{Error: "that is an agent token: reviewers sign in with a reviewer token of their own"})
		return
	}
	rv, ok := match(h.cfg.Reviewers, tok)
	if !ok {
		h.log.Warn("failed sign-in on the review page", "remote", r.RemoteAddr)
		h.render(w, r, http.StatusUnauthorized, "login", loginView{Error: "wrong reviewer token"})
		return
	}
	cookie, _ := h.sessions.create(rv.Name, h.cfg.Now())
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: cookie, Path: Prefix, HttpOnly: true, Secure: h.cfg.Secure,
		SameSite: http.SameSiteStrictMode, MaxAge: int(h.cfg.SessionTTL.Seconds()),
	})
	h.log.Info("reviewer signed in to the review page", "reviewer", rv.Name, "remote", r.RemoteAddr)
	http.Redirect(w, r, Prefix+"/", http.StatusSeeOther)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(cookieName); err == nil {
		h.sessions.end(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: Prefix, HttpOnly: true, Secure: h.cfg.Secure,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, Prefix+"/login", http.StatusSeeOther)
}

// flash keeps msg for the reviewer's next page.
func (h *Handler) flash(r *http.Request, msg string) {
	if wh := reviewerOf(r.Context()); wh.sess != nil {
		h.sessions.setFlash(wh.sess, msg)
	}
}

// reqContext bounds a request's database work.
func reqContext(r *http.Request, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), d)
}

// Bounds on the database work of one request: reads are catalog-sized; a
// decision may replay a migration (bounded by its own statement timeout).
const (
	readTimeout   = 15 * time.Second
	decideTimeout = 10 * time.Minute
)

func errorf(format string, a ...any) error { return fmt.Errorf(format, a...) }
