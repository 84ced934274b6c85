package dbconn

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/pgcluster"
)

// TestExplain connects the ways users get wrong and checks that each says
// its real cause in one line, with no password and no TLS red herring.
func TestExplain(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := pgcluster.Start(ctx, pgcluster.Options{SuperuserPassword: "s3cret-admin"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })
	closed := closedPort(t)
	for _, tc := range []struct {
		name, url string
		want      []string
	}{
		{"wrong password", c.LoginURL("postgres", "wrong-password", "postgres"),
			[]string{`the password for user "postgres" was refused`, "fix the user or password in AIRLOCK_DATABASE_URL"}},
		// sslmode=prefer: pgx reports the TLS attempt first.
		{"wrong password, sslmode prefer", strings.Replace(c.LoginURL("postgres", "wrong-password", "postgres"), "sslmode=disable", "sslmode=prefer", 1),
			[]string{`the password for user "postgres" was refused`}},
		{"missing database", c.LoginURL("postgres", "s3cret-admin", "no_such_db"),
			[]string{`database "no_such_db" does not exist`, "psql -l"}},
		{"unknown role", c.LoginURL("nobody", "x", "postgres"),
			[]string{`"nobody"`}},
		{"nothing listening", "postgres://u:p@127.0.0.1:" + strconv.Itoa(closed) + "/db?sslmode=prefer",
			[]string{"nothing accepts connections on 127.0.0.1:" + strconv.Itoa(closed)}},
		{"tls required", strings.Replace(c.LoginURL("postgres", "s3cret-admin", "postgres"), "sslmode=disable", "sslmode=require", 1),
			[]string{"does not accept TLS", "sslmode"}},
		{"not a URL", "postgres://%zz", []string{"is not a valid PostgreSQL URL"}},
		{"empty", " ", []string{"is empty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool, err := Open(ctx, "AIRLOCK_DATABASE_URL", tc.url, Options{})
			if err == nil {
				pool.Close()
				t.Fatal("connected")
			}
			msg := err.Error()
			t.Log(msg)
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q lacks %q", msg, w)
				}
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("message has several lines: %q", msg)
			}
			for _, secret := range []string{"s3cret-admin", "wrong-password", "postgres://postgres", "127.0.0.1:" + strconv.Itoa(c.Port()) + "/"} {
				if strings.Contains(msg, secret) {
					t.Errorf("message shows %q: %q", secret, msg)
				}
			}
			if tc.name != "tls required" && strings.Contains(strings.ToLower(msg), "tls") {
				t.Errorf("message blames TLS: %q", msg)
			}
		})
	}
	pool, err := Open(ctx, "AIRLOCK_DATABASE_URL", c.URL("postgres"), Options{})
	if err != nil {
		t.Fatalf("the right URL: %v", err)
	}
	pool.Close()
}

func closedPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return p
}
