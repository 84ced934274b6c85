package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

const testToken = "0123456789abcdef0123456789abcdef-a"

// newTestGate builds the HTTP front door around next, as HTTPHandler does.
func newTestGate(t *testing.T, cfg HTTPConfig, next http.Handler) http.Handler {
	t.Helper()
	cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	s := &Server{cfg: Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}}
	g := s.gate(cfg, next)
	return g
}

func TestHTTPConfigCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  HTTPConfig
		want string
	}{
		{"no token", HTTPConfig{}, "AIRLOCK_HTTP_TOKEN"},
		{"short token", HTTPConfig{Tokens: []string{"abc"}}, "at least 32"},
		{"space in token", HTTPConfig{Tokens: []string{testToken + " x"}}, "white space"},
		{"bad origin", HTTPConfig{Tokens: []string{testToken}, AllowedOrigins: []string{"console.example.com"}}, "scheme://host"},
		{"cert without key", HTTPConfig{Tokens: []string{testToken}, TLSCert: "c.pem"}, "both"},
		{"ok", HTTPConfig{Tokens: []string{testToken}, AllowedOrigins: []string{"https://a.example:8443"}}, ""},
	} {
		err := tc.cfg.Check()
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestGateChecks(t *testing.T) {
	reached := 0
	g := newTestGate(t, HTTPConfig{Tokens: []string{testToken, testToken + "-second"}, AllowedOrigins: []string{"https://Console.example.com:443"}, MaxBodyBytes: 1024},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, err := io.ReadAll(r.Body); err != nil {
				http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
				return
			}
			reached++
		}))
	for _, tc := range []struct {
		name   string
		auth   string
		origin string
		body   string
		status int
		path   string
	}{
		{"other path", "Bearer " + testToken, "", "{}", http.StatusNotFound, "/admin"},
		{"no header", "", "", "{}", http.StatusUnauthorized, Endpoint},
		{"empty bearer", "Bearer ", "", "{}", http.StatusUnauthorized, Endpoint},
		{"wrong token", "Bearer " + strings.Repeat("x", 34), "", "{}", http.StatusUnauthorized, Endpoint},
		{"token with suffix", "Bearer " + testToken + "z", "", "{}", http.StatusUnauthorized, Endpoint},
		{"right token", "Bearer " + testToken, "", "{}", http.StatusOK, Endpoint},
		{"second token, lower-case scheme", "bearer " + testToken + "-second", "", "{}", http.StatusOK, Endpoint},
		{"foreign origin", "Bearer " + testToken, "https://evil.example", "{}", http.StatusForbidden, Endpoint},
		{"null origin", "Bearer " + testToken, "null", "{}", http.StatusForbidden, Endpoint},
		{"allowed origin, normalized", "Bearer " + testToken, "https://console.example.com", "{}", http.StatusOK, Endpoint},
		{"body too large", "Bearer " + testToken, "", strings.Repeat("x", 2048), http.StatusRequestEntityTooLarge, Endpoint},
	} {
		before := reached
		req := httptest.NewRequest(http.MethodPost, tc.path, strings.NewReader(tc.body))
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		if tc.origin != "" {
			req.Header.Set("Origin", tc.origin)
		}
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, req)
		if rec.Code != tc.status {
			t.Errorf("%s: status %d, want %d (%s)", tc.name, rec.Code, tc.status, rec.Body)
		}
		if ok := reached > before; ok != (tc.status == http.StatusOK) {
			t.Errorf("%s: reached MCP = %v", tc.name, ok)
		}
	}
}

// TestGateInFlight: a token's concurrent requests past its limit are
// refused at once with 429, not queued; another token is unaffected.
func TestGateInFlight(t *testing.T) {
	release := make(chan struct{})
	var entered sync.WaitGroup
	entered.Add(2)
	g := newTestGate(t, HTTPConfig{Tokens: []string{testToken, testToken + "-b"}, MaxInFlight: 2, RatePerSecond: 1000, Burst: 1000},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("X-Block") != "" {
				entered.Done()
				<-release
			}
		}))
	do := func(token string, block bool) int {
		req := httptest.NewRequest(http.MethodPost, Endpoint, strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer "+token)
		if block {
			req.Header.Set("X-Block", "1")
		}
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, req)
		return rec.Code
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); do(testToken, true) }()
	}
	entered.Wait()
	if code := do(testToken, false); code != http.StatusTooManyRequests {
		t.Fatalf("third request in flight: %d, want 429", code)
	}
	if code := do(testToken+"-b", false); code != http.StatusOK {
		t.Fatalf("another token: %d, want 200", code)
	}
	close(release)
	wg.Wait()
	if code := do(testToken, false); code != http.StatusOK {
		t.Fatalf("after the others finished: %d, want 200", code)
	}
}

// TestGateRate: past its burst a token gets 429 with Retry-After.
func TestGateRate(t *testing.T) {
	g := newTestGate(t, HTTPConfig{Tokens: []string{testToken}, RatePerSecond: 2, Burst: 2}, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	codes := map[int]int{}
	var retry string
	for range 5 {
		req := httptest.NewRequest(http.MethodPost, Endpoint, strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer "+testToken)
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, req)
		codes[rec.Code]++
		if rec.Code == http.StatusTooManyRequests {
			retry = rec.Header().Get("Retry-After")
		}
	}
	if codes[http.StatusOK] != 2 || codes[http.StatusTooManyRequests] != 3 || retry == "" {
		t.Fatalf("codes %v, Retry-After %q", codes, retry)
	}
	time.Sleep(600 * time.Millisecond)
	req := httptest.NewRequest(http.MethodPost, Endpoint, strings.NewReader("{}"))
	req.Header.Set("Authorization", "Bearer "+testToken)
	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("after refill: %d", rec.Code)
	}
}
