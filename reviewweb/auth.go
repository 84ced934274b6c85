package reviewweb

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"
)

// MinTokenLength is the shortest reviewer token accepted: a token is a
// reviewer's whole identity on the review page.
const MinTokenLength = 32

// Reviewer is one named reviewer token. Only its SHA-256 is kept.
type Reviewer struct {
	Name string
	sum  [sha256.Size]byte
	// hashed is true when the token was given as its SHA-256 only.
	hashed bool
}

// Hashed reports whether the reviewer's token was given as its hash
// (NAME:sha256:HEX), as a tokens file should hold it.
func (r Reviewer) Hashed() bool { return r.hashed }

// Sum is the SHA-256 of the reviewer's token.
func (r Reviewer) Sum() [sha256.Size]byte { return r.sum }

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// ParseReviewers reads named reviewer tokens: "alice:TOKEN,bob:TOKEN" (the
// AIRLOCK_REVIEWER_TOKENS form), or one "NAME:TOKEN" or
// "NAME:sha256:HEX" (the token's SHA-256, for a file that should not hold
// tokens themselves) per line or comma-separated item. Blank lines and
// lines starting with # are skipped.
func ParseReviewers(text string) ([]Reviewer, error) {
	var out []Reviewer
	seen := map[string]bool{}
	sums := map[[sha256.Size]byte]bool{}
	for _, line := range strings.FieldsFunc(text, func(r rune) bool { return r == '\n' || r == ',' }) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, secret, ok := strings.Cut(line, ":")
		if !ok {
			return nil, errors.New("a reviewer token is NAME:TOKEN (or NAME:sha256:HEX)")
		}
		if !namePattern.MatchString(name) {
			return nil, fmt.Errorf("reviewer name %q: use 1 to 64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit", name)
		}
		if seen[name] {
			return nil, fmt.Errorf("reviewer %s is named twice: each reviewer has one token", name)
		}
		seen[name] = true
		r := Reviewer{Name: name}
		if h, ok := strings.CutPrefix(secret, "sha256:"); ok {
			b, err := hex.DecodeString(h)
			if err != nil || len(b) != sha256.Size {
				return nil, fmt.Errorf("reviewer %s: sha256: needs the token's SHA-256 as 64 hex digits", name)
			}
			copy(r.sum[:], b)
			r.hashed = true
		} else {
			if len(secret) < MinTokenLength {
				return nil, fmt.Errorf("reviewer %s: the token is %d characters; use at least %d (generate one with: openssl rand -hex 32)", name, len(secret), MinTokenLength)
			}
			if strings.ContainsAny(secret, " \t\r") {
				return nil, fmt.Errorf("reviewer %s: the token contains white space", name)
			}
			r.sum = sha256.Sum256([]byte(secret))
		}
		if sums[r.sum] {
			return nil, fmt.Errorf("reviewer %s has the same token as another reviewer: each reviewer needs a token of their own, or the two-person rule means nothing", name)
		}
		sums[r.sum] = true
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, errors.New("no reviewer tokens")
	}
	return out, nil
}

// HashedLine is the file line that names reviewer with only the hash of
// token: what `NAME:sha256:HEX` in a reviewer tokens file is.
func HashedLine(name, token string) string {
	sum := sha256.Sum256([]byte(token))
	return name + ":sha256:" + hex.EncodeToString(sum[:])
}

// match returns the reviewer whose token is presented, comparing with
// every configured token in constant time.
func match(reviewers []Reviewer, presented string) (Reviewer, bool) {
	sum := sha256.Sum256([]byte(presented))
	var found Reviewer
	ok := false
	for _, r := range reviewers {
		if subtle.ConstantTimeCompare(sum[:], r.sum[:]) == 1 {
			found, ok = r, true
		}
	}
	return found, ok
}

// bearer returns the bearer token of r, if any.
func bearer(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

// cookieName is the session cookie; its path is /review, so no other
// path of the service ever receives it.
const cookieName = "airlock_review"

// session is one signed-in reviewer's browser session.
type session struct {
	name    string
	csrf    string
	expires time.Time
	flash   string // one message for the next page, then gone
}

// sessions are kept in memory only: a restart signs everyone out, and
// nothing of them is ever on disk. Keys are the SHA-256 of the cookie
// value, so not even a memory dump of the map hands out cookies.
type sessions struct {
	mu  sync.Mutex
	m   map[[sha256.Size]byte]*session
	ttl time.Duration
	max int
}

func newSessions(ttl time.Duration) *sessions {
	return &sessions{m: map[[sha256.Size]byte]*session{}, ttl: ttl, max: 10000}
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

func (s *sessions) create(name string, now time.Time) (cookie string, sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= s.max {
		for k, v := range s.m {
			if !now.Before(v.expires) {
				delete(s.m, k)
			}
		}
	}
	cookie = randomToken()
	sess = &session{name: name, csrf: randomToken(), expires: now.Add(s.ttl)}
	s.m[sha256.Sum256([]byte(cookie))] = sess
	return cookie, sess
}

func (s *sessions) get(cookie string, now time.Time) (*session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := sha256.Sum256([]byte(cookie))
	sess, ok := s.m[k]
	if !ok {
		return nil, false
	}
	if !now.Before(sess.expires) {
		delete(s.m, k)
		return nil, false
	}
	return sess, true
}

func (s *sessions) end(cookie string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, sha256.Sum256([]byte(cookie)))
}

// setFlash keeps msg for the session's next page (after a redirect).
func (s *sessions) setFlash(sess *session, msg string) {
	s.mu.Lock()
	sess.flash = msg
	s.mu.Unlock()
}

func (s *sessions) takeFlash(sess *session) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := sess.flash
	sess.flash = ""
	return m
}

// sameOrigin reports whether a browser request comes from the service's
// own pages. Browsers send Origin on every POST and Sec-Fetch-Site on
// every request; a request with neither is not from a browser (a CLI with
// a bearer token), which CSRF cannot forge.
func sameOrigin(r *http.Request, secure bool) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	// A browser sends "null" for a form of the page itself when a
	// referrer policy hides the origin; Sec-Fetch-Site, which no page can
	// set, then says whether it was the page itself.
	if origin == "null" {
		return r.Header.Get("Sec-Fetch-Site") == "same-origin"
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	scheme := "http"
	if secure || r.TLS != nil {
		scheme = "https"
	}
	return strings.EqualFold(u.Scheme, scheme) && strings.EqualFold(u.Host, r.Host)
}

// csrfOK compares the request's CSRF token (form field or header) with
// the session's, in constant time.
func csrfOK(r *http.Request, sess *session) bool {
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		got = r.PostFormValue("csrf")
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(sess.csrf)) == 1
}

// TokenSet returns a constant-time membership test for tokens: the review
// page's way of recognising an agent's bearer token.
func TokenSet(tokens []string) func(string) bool {
	sums := make([][sha256.Size]byte, len(tokens))
	for i, t := range tokens {
		sums[i] = sha256.Sum256([]byte(t))
	}
	return func(presented string) bool {
		sum := sha256.Sum256([]byte(presented))
		found := false
		for i := range sums {
			if subtle.ConstantTimeCompare(sum[:], sums[i][:]) == 1 {
				found = true
			}
		}
		return found
	}
}

// rebound reports a request that reached a loopback listener under a
// Host that is not loopback nor one of allowed: a page of another site
// whose name was rebound to 127.0.0.1 (DNS rebinding), which the browser
// would otherwise treat as same-origin with itself.
func rebound(r *http.Request, allowed []string) bool {
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok || local == nil || !loopback(local.String()) || loopback(r.Host) {
		return false
	}
	for _, h := range allowed {
		if strings.EqualFold(h, r.Host) {
			return false
		}
	}
	return true
}

func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = strings.Trim(addr, "[]")
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
