package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	mcpserver "github.com/mark3labs/mcp-go/server"
	"golang.org/x/time/rate"

	"github.com/airlock-dev/airlock/internal/jsonrpc"
)

// HTTPConfig configures the Streamable HTTP transport, for teams that run
// one shared airlock. Every request must carry one of Tokens as a bearer
// token; each token has its own rate and concurrency limits, and each MCP
// session is its own airlock session.
type HTTPConfig struct {
	// Addr is the address to listen on, e.g. "127.0.0.1:8765".
	Addr string
	// Tokens are the accepted bearer tokens (at least one, each at least
	// MinTokenLength characters).
	Tokens []string
	// AllowedOrigins are the browser origins (scheme://host[:port]) that
	// may call airlock. A request without an Origin header (any non-browser
	// MCP client) is allowed; one with an Origin not listed is refused, so
	// a web page cannot drive airlock through a victim's browser.
	AllowedOrigins []string
	// RatePerSecond and Burst bound each token's requests (defaults 20/s,
	// burst 40).
	RatePerSecond float64
	Burst         int
	// MaxInFlight bounds each token's concurrent POST requests (default 8).
	MaxInFlight int
	// SessionIdleTTL ends an MCP session nobody used for this long (default
	// 30 minutes). Its pending changes and branch stay for the reviewer.
	SessionIdleTTL time.Duration
	// MaxBodyBytes bounds a request body (default MaxFrameBytes, as over stdio).
	MaxBodyBytes int64
	// TLSCert and TLSKey, if set, serve HTTPS.
	TLSCert, TLSKey string
	// Listening, if set, is called with the bound address once the
	// listener is open (tests listen on port 0).
	Listening func(addr net.Addr)
	// Review, if set, serves everything under ReviewPrefix: the review
	// page, with its own sign-in (reviewer tokens, never the bearer
	// tokens above). Unset, those paths answer 404.
	Review http.Handler
}

// ReviewPrefix is where the review page is served on the same listener.
const ReviewPrefix = "/review"

// MinTokenLength is the shortest bearer token serve accepts: a token is
// the only thing between the network and the database.
const MinTokenLength = 32

// Endpoint is the path MCP is served on.
const Endpoint = "/mcp"

func (c *HTTPConfig) withDefaults() {
	if c.RatePerSecond <= 0 {
		c.RatePerSecond = 20
	}
	if c.Burst <= 0 {
		c.Burst = 40
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 8
	}
	if c.SessionIdleTTL <= 0 {
		c.SessionIdleTTL = 30 * time.Minute
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = MaxFrameBytes
	}
}

// Check reports configuration that must not start, so that serve can
// refuse before it connects to anything.
func (c *HTTPConfig) Check() error {
	d := *c
	d.withDefaults()
	return d.validate()
}

func (c *HTTPConfig) validate() error {
	if len(c.Tokens) == 0 {
		return errors.New("no bearer token: set AIRLOCK_HTTP_TOKEN (generate one with: openssl rand -hex 32)")
	}
	for i, t := range c.Tokens {
		if len(t) < MinTokenLength {
			return fmt.Errorf("bearer token %d is %d characters; use at least %d (generate one with: openssl rand -hex 32)", i+1, len(t), MinTokenLength)
		}
		if strings.ContainsAny(t, " \t\r\n") {
			return fmt.Errorf("bearer token %d contains white space", i+1)
		}
	}
	for _, o := range c.AllowedOrigins {
		if _, err := normalizeOrigin(o); err != nil {
			return fmt.Errorf("allowed origin %q: %w", o, err)
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("TLS needs both a certificate and a key")
	}
	return nil
}

// HTTPHandler returns the Streamable HTTP handler for s, wrapped in
// airlock's checks: body size, Origin, bearer token, then the token's rate
// and concurrency limits. stop ends the MCP sessions; call it when the
// listener is done. A Server serves one HTTP handler at most.
func (s *Server) HTTPHandler(cfg HTTPConfig) (h http.Handler, stop func(context.Context), err error) {
	cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, nil, err
	}
	if s.ids != nil {
		return nil, nil, errors.New("this server already serves HTTP")
	}
	s.ids = newSessionIDs()
	streamable := mcpserver.NewStreamableHTTPServer(s.mcp,
		mcpserver.WithEndpointPath(Endpoint),
		mcpserver.WithSessionIdManagerResolver(s.ids),
		// Both revisions clients speak: 2025-11-25 with MCP sessions (one
		// airlock session each) and 2026-07-28 without (one airlock session
		// per bearer token; see sessionEnv).
		mcpserver.WithSessionIdleTTL(cfg.SessionIdleTTL),
		mcpserver.WithStreamableHTTPLogger(s.cfg.Logger),
	)
	return s.gate(cfg, streamable), func(ctx context.Context) { _ = streamable.Shutdown(ctx) }, nil
}

// gate wraps next in the checks of a validated cfg.
func (s *Server) gate(cfg HTTPConfig, next http.Handler) *gate {
	g := &gate{cfg: cfg, next: next, log: s.cfg.Logger}
	for _, t := range cfg.Tokens {
		sum := sha256.Sum256([]byte(t))
		g.tokens = append(g.tokens, tokenState{
			sum:      sum,
			label:    hex.EncodeToString(sum[:4]),
			limiter:  rate.NewLimiter(rate.Limit(cfg.RatePerSecond), cfg.Burst),
			inFlight: make(chan struct{}, cfg.MaxInFlight),
		})
	}
	for _, o := range cfg.AllowedOrigins {
		n, _ := normalizeOrigin(o)
		g.origins = append(g.origins, n)
	}
	return g
}

// ListenHTTP serves MCP over Streamable HTTP on cfg.Addr until ctx ends,
// then stops taking requests, lets the ones in flight finish (for up to
// shutdownGrace) and returns.
func (s *Server) ListenHTTP(ctx context.Context, cfg HTTPConfig) error {
	handler, stop, err := s.HTTPHandler(cfg)
	if err != nil {
		return err
	}
	ln, err := listen(cfg.Addr)
	if err != nil {
		return err
	}
	scheme := "http"
	if cfg.TLSCert != "" {
		scheme = "https"
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() && scheme == "http" {
		s.cfg.Logger.Warn("serving plain HTTP on a non-loopback address: bearer tokens and data cross the network unencrypted; use --tls-cert/--tls-key or a TLS-terminating proxy", "addr", ln.Addr().String())
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          log.New(slogWriter{s.cfg.Logger}, "", 0),
	}
	where := scheme + "://" + ln.Addr().String() + Endpoint
	if ln.Addr().Network() == "unix" {
		where = "unix:" + ln.Addr().String() + " (" + scheme + "://localhost" + Endpoint + ")"
	}
	s.cfg.Logger.Info("serving MCP over Streamable HTTP", "url", where)
	if cfg.Listening != nil {
		cfg.Listening(ln.Addr())
	}
	served := make(chan error, 1)
	go func() {
		if cfg.TLSCert != "" {
			served <- srv.ServeTLS(ln, cfg.TLSCert, cfg.TLSKey)
		} else {
			served <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-served:
		stop(context.Background())
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	// Ending the MCP sessions first closes their event streams, which
	// would otherwise keep Shutdown waiting; calls in flight finish.
	stop(sctx)
	if err := srv.Shutdown(sctx); err != nil {
		s.cfg.Logger.Warn("calls still running at shutdown were cut; their transactions roll back", "err", err)
		srv.Close()
	}
	<-served
	return nil
}

// listen opens addr: host:port for TCP, or unix:PATH for a Unix socket
// (mode 0660: its group is who may reach the service; the bearer token is
// still required). A socket file left by an earlier run is replaced.
func listen(addr string) (net.Listener, error) {
	path, ok := strings.CutPrefix(addr, "unix:")
	if !ok {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", addr, err)
		}
		return ln, nil
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		os.Remove(path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}

// shutdownGrace is how long calls in flight may take to finish when
// serve is told to stop.
const shutdownGrace = 10 * time.Second

// gate is the HTTP front door: every check that must pass before a
// request reaches MCP.
type gate struct {
	cfg     HTTPConfig
	next    http.Handler
	log     interface{ Warn(string, ...any) }
	tokens  []tokenState
	origins []string
}

type tokenState struct {
	sum      [sha256.Size]byte
	label    string // identifies the token in logs without revealing it
	limiter  *rate.Limiter
	inFlight chan struct{}
}

type tokenKey struct{}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The review page authenticates on its own: an agent's bearer token
	// opens nothing there, a reviewer's token nothing here.
	if r.URL.Path == ReviewPrefix || strings.HasPrefix(r.URL.Path, ReviewPrefix+"/") {
		if g.cfg.Review == nil {
			httpError(w, http.StatusNotFound, "the review page is off: start airlock serve --http with reviewer tokens ("+"AIRLOCK_REVIEWER_TOKENS or --reviewer-tokens-file) and --review-database-url-file")
			return
		}
		if r.URL.Path == ReviewPrefix {
			http.Redirect(w, r, ReviewPrefix+"/", http.StatusMovedPermanently)
			return
		}
		g.cfg.Review.ServeHTTP(w, r)
		return
	}
	// mcp-go's handler answers MCP on any path it is given.
	if r.URL.Path != Endpoint {
		httpError(w, http.StatusNotFound, "not found: MCP is served at "+Endpoint)
		return
	}
	if origin := r.Header.Get("Origin"); origin != "" && !g.originAllowed(origin) {
		g.log.Warn("refused a request from a browser origin that is not allowed", "origin", origin, "remote", r.RemoteAddr)
		httpError(w, http.StatusForbidden, "origin "+strconv.Quote(origin)+" is not allowed: add it with --allow-origin if a browser client must reach airlock")
		return
	}
	tok := g.token(r)
	if tok < 0 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="airlock"`)
		httpError(w, http.StatusUnauthorized, "missing or wrong bearer token: send Authorization: Bearer <AIRLOCK_HTTP_TOKEN>")
		return
	}
	ts := &g.tokens[tok]
	if res := ts.limiter.Reserve(); res.Delay() > 0 {
		retry := res.Delay()
		res.Cancel()
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(retry.Seconds()))))
		httpError(w, http.StatusTooManyRequests, fmt.Sprintf("rate limit exceeded for this token (%g requests/s, burst %d): retry in %s", g.cfg.RatePerSecond, g.cfg.Burst, retry.Round(time.Millisecond)))
		return
	}
	if r.Method == http.MethodPost {
		select {
		case ts.inFlight <- struct{}{}:
			defer func() { <-ts.inFlight }()
		default:
			w.Header().Set("Retry-After", "1")
			httpError(w, http.StatusTooManyRequests, fmt.Sprintf("too many requests in flight for this token (limit %d): wait for answers before sending more", g.cfg.MaxInFlight))
			return
		}
		if r.ContentLength > g.cfg.MaxBodyBytes {
			httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is %d bytes; the limit is %d", r.ContentLength, g.cfg.MaxBodyBytes))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, g.cfg.MaxBodyBytes)
	}
	jw := &jsonErrorWriter{ResponseWriter: w, noSession: r.Header.Get(mcpserver.HeaderKeySessionID) == ""}
	defer jw.finish()
	g.next.ServeHTTP(jw, r.WithContext(context.WithValue(r.Context(), tokenKey{}, tokenRef{tok, ts.label})))
}

// jsonErrorWriter turns the plain-text error answers of mcp-go's transport
// into JSON-RPC error bodies, as every other error airlock sends over HTTP
// is, so that a client always finds a reason it can parse. A request
// without an Mcp-Session-Id header (other than initialize) is told so
// with 400, as the specification asks; 404 stays for a session id that
// is unknown, ended or another token's.
type jsonErrorWriter struct {
	http.ResponseWriter
	noSession bool
	status    int // a text error being held, 0 otherwise
	body      []byte
}

func (w *jsonErrorWriter) WriteHeader(code int) {
	if code >= 400 && strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
		w.status = code
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *jsonErrorWriter) Write(p []byte) (int, error) {
	if w.status != 0 {
		if len(w.body) < 4<<10 {
			w.body = append(w.body, p...)
		}
		return len(p), nil
	}
	return w.ResponseWriter.Write(p)
}

// Flush keeps event streams streaming through the wrapper.
func (w *jsonErrorWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok && w.status == 0 {
		f.Flush()
	}
}

func (w *jsonErrorWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *jsonErrorWriter) finish() {
	if w.status == 0 {
		return
	}
	status, msg := w.status, strings.TrimSpace(string(w.body))
	if status == http.StatusNotFound && w.noSession && msg == "Invalid session ID" {
		status, msg = http.StatusBadRequest, "missing Mcp-Session-Id header: send initialize first and then the session id it returned with every request"
	} else if status == http.StatusNotFound && msg == "Invalid session ID" {
		msg = errNoSession.Error()
	}
	w.Header().Del("X-Content-Type-Options")
	httpError(w.ResponseWriter, status, msg)
}

// token returns the index of the request's bearer token, or -1. Every
// configured token is compared, in constant time, so neither the timing
// nor the order of tokens tells an attacker how close a guess was.
func (g *gate) token(r *http.Request) int {
	scheme, presented, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return -1
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(presented)))
	found := -1
	for i := range g.tokens {
		if subtle.ConstantTimeCompare(sum[:], g.tokens[i].sum[:]) == 1 {
			found = i
		}
	}
	return found
}

func (g *gate) originAllowed(origin string) bool {
	n, err := normalizeOrigin(origin)
	if err != nil {
		return false
	}
	for _, o := range g.origins {
		if o == n {
			return true
		}
	}
	return false
}

// normalizeOrigin reduces an origin to lower-case scheme://host[:port],
// dropping a default port.
func normalizeOrigin(o string) (string, error) {
	u, err := url.Parse(o)
	if err != nil {
		return "", err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return "", errors.New("an origin is scheme://host[:port]")
	}
	host := strings.ToLower(u.Host)
	if p := u.Port(); (u.Scheme == "http" && p == "80") || (u.Scheme == "https" && p == "443") {
		host = strings.ToLower(u.Hostname())
	}
	return u.Scheme + "://" + host, nil
}

// httpError answers with a JSON-RPC error body, which MCP clients show as
// the reason, and the HTTP status that says what happened.
func httpError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(jsonrpc.Error(nil, -32000, msg), '\n'))
}

// tokenRef names the token that authenticated a request.
type tokenRef struct {
	index int
	label string
}

// tokenOf returns the token that authenticated the request ctx belongs
// to; index is -1 outside the HTTP transport.
func tokenOf(ctx context.Context) tokenRef {
	if t, ok := ctx.Value(tokenKey{}).(tokenRef); ok {
		return t
	}
	return tokenRef{index: -1}
}
