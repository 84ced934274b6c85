package reviewweb

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestParseReviewers(t *testing.T) {
	tok := strings.Repeat("a", 32)
	tok2 := strings.Repeat("b", 40)
	tests := []struct {
		in    string
		names []string
		err   string
	}{
		{"alice:" + tok + ",bob:" + tok2, []string{"alice", "bob"}, ""},
		{"# reviewers\nalice:" + tok + "\n\n" + HashedLine("bob", tok2) + "\n", []string{"alice", "bob"}, ""},
		{"alice:" + tok + ",alice:" + tok2, nil, "named twice"},
		{"alice:" + tok + ",bob:" + tok, nil, "same token"},
		{"alice:" + tok + "," + HashedLine("bob", tok), nil, "same token"},
		{"alice:short", nil, "at least 32"},
		{"alice", nil, "NAME:TOKEN"},
		{":" + tok, nil, "reviewer name"},
		{"al ice:" + tok, nil, "reviewer name"},
		{"alice\u202e:" + tok, nil, "reviewer name"},
		{"bob:sha256:1234", nil, "64 hex digits"},
		{"alice:" + strings.Repeat("a", 16) + " " + strings.Repeat("a", 16), nil, "white space"},
		{"", nil, "no reviewer tokens"},
	}
	for _, tt := range tests {
		rs, err := ParseReviewers(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseReviewers(%q) = %v, want an error with %q", tt.in, err, tt.err)
			}
			if err != nil && strings.Contains(err.Error(), tok) {
				t.Errorf("the error repeats the token: %v", err)
			}
			continue
		}
		if err != nil || len(rs) != len(tt.names) {
			t.Fatalf("ParseReviewers(%q) = %v, %v", tt.in, rs, err)
		}
		for i, r := range rs {
			if r.Name != tt.names[i] {
				t.Errorf("name %d = %s, want %s", i, r.Name, tt.names[i])
			}
		}
		if r, ok := match(rs, tok2); !ok || r.Name != "bob" {
			t.Errorf("match(bob's token) = %v %v", r, ok)
		}
		if _, ok := match(rs, tok2+"x"); ok {
			t.Error("a longer token matched")
		}
	}
	if name, same := SameToken([]Reviewer{{Name: "alice", sum: mustSum(tok)}}, []string{tok2, tok}); !same || name != "alice" {
		t.Error("SameToken missed a reviewer token used as an agent token")
	}
	if !TokenSet([]string{tok})(tok) || TokenSet([]string{tok})(tok2) {
		t.Error("TokenSet")
	}
}

func mustSum(tok string) [32]byte {
	rs, _ := ParseReviewers("x:" + tok)
	return rs[0].sum
}

func TestSameOrigin(t *testing.T) {
	tests := []struct {
		origin, site string
		secure, want bool
	}{
		{"", "", false, true},
		{"http://airlock.test:8765", "same-origin", false, true},
		{"HTTP://AIRLOCK.TEST:8765", "", false, true},
		{"", "none", false, true},
		{"https://airlock.test:8765", "", true, true},
		{"https://airlock.test:8765", "", false, false},
		{"http://airlock.test:8765", "", true, false},
		{"http://airlock.test", "", false, false},
		{"http://airlock.test:8765.evil", "", false, false},
		{"null", "", false, false},
		{"null", "same-origin", false, true},
		{"null", "cross-site", false, false},
		{"null", "none", false, false},
		{"http://evil.test", "cross-site", false, false},
		{"", "cross-site", false, false},
		{"", "same-site", false, false},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("POST", "http://airlock.test:8765/review/login", nil)
		if tt.origin != "" {
			r.Header.Set("Origin", tt.origin)
		}
		if tt.site != "" {
			r.Header.Set("Sec-Fetch-Site", tt.site)
		}
		if got := sameOrigin(r, tt.secure); got != tt.want {
			t.Errorf("sameOrigin(Origin %q, Sec-Fetch-Site %q, secure %v) = %v", tt.origin, tt.site, tt.secure, got)
		}
	}
}

func TestRebound(t *testing.T) {
	loop := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8765}
	public := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 5), Port: 8765}
	tests := []struct {
		local net.Addr
		host  string
		want  bool
	}{
		{loop, "127.0.0.1:8765", false},
		{loop, "localhost:8765", false},
		{loop, "[::1]:8765", false},
		{loop, "evil.example:8765", true},
		{loop, "airlock.example.com", false}, // the --public-url's host
		{public, "evil.example:8765", false},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/review/", nil)
		r.Host = tt.host
		r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, tt.local))
		if got := rebound(r, []string{"airlock.example.com"}); got != tt.want {
			t.Errorf("rebound(local %s, Host %s) = %v", tt.local, tt.host, got)
		}
	}
}
