package pgcluster

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// requireBinaries fails (never skips) when PostgreSQL is missing: CI must
// notice.
func requireBinaries(t *testing.T) {
	t.Helper()
	if _, err := FindBinDir(); err != nil {
		t.Fatal(err)
	}
}

func queryString(t *testing.T, ctx context.Context, url, sql string) string {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	defer conn.Close(ctx)
	var s string
	if err := conn.QueryRow(ctx, sql).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

func TestStartRestartStop(t *testing.T) {
	requireBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := Start(ctx, Options{Settings: map[string]string{"work_mem": "8MB"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })

	url := c.URL("postgres")
	if want := "postgres://postgres@127.0.0.1:"; !strings.HasPrefix(url, want) || !strings.HasSuffix(url, "/postgres?sslmode=disable") {
		t.Errorf("URL = %s", url)
	}
	for setting, want := range map[string]string{
		"max_prepared_transactions": "20",
		"max_connections":           "200",
		"fsync":                     "off",
		"synchronous_commit":        "off",
		"full_page_writes":          "off",
		"work_mem":                  "8MB",
		"TimeZone":                  "UTC",
		"server_encoding":           "UTF8",
		"lc_collate":                "C",
	} {
		if got := queryString(t, ctx, url, "SHOW "+setting); got != want {
			t.Errorf("SHOW %s = %q, want %q", setting, got, want)
		}
	}
	if got := queryString(t, ctx, url, "SELECT current_user"); got != "postgres" {
		t.Errorf("current_user = %q, want postgres", got)
	}

	// The Unix socket lives in Dir().
	socketURL := "host=" + c.Dir() + " port=" + strconv.Itoa(c.Port()) + " user=postgres dbname=postgres"
	if got := queryString(t, ctx, socketURL, "SELECT 'via socket'"); got != "via socket" {
		t.Errorf("socket query = %q", got)
	}

	// A prepared transaction survives a restart.
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{"BEGIN", "CREATE TABLE t (id int)", "PREPARE TRANSACTION 'pgcluster_restart'"} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	conn.Close(ctx)
	port := c.Port()
	if err := c.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if c.Port() != port {
		t.Errorf("port changed on restart: %d → %d", port, c.Port())
	}
	if got := queryString(t, ctx, url, "SELECT gid FROM pg_prepared_xacts"); got != "pgcluster_restart" {
		t.Errorf("prepared transaction after restart = %q", got)
	}
	if got := queryString(t, ctx, url, "SHOW work_mem"); got != "8MB" {
		t.Errorf("work_mem after restart = %q", got)
	}

	dir := c.Dir()
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("cluster directory %s still exists after Stop (stat: %v)", dir, err)
	}
	if err := c.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if err := c.Restart(ctx); err == nil {
		t.Error("Restart after Stop succeeded")
	}
}

// syncBuffer is a bytes.Buffer safe for the log copier and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestStartInDirWithLogWriter(t *testing.T) {
	requireBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// Not t.TempDir(): as root its parent is private, and the postgres OS
	// user could not reach it.
	dir, err := os.MkdirTemp("", "pgcluster-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	var log syncBuffer
	c, err := Start(ctx, Options{Dir: dir, Log: &log, MaxPreparedTransactions: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })
	if got := queryString(t, ctx, c.URL("postgres"), "SHOW max_prepared_transactions"); got != "0" {
		t.Errorf("max_prepared_transactions = %q, want 0", got)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "database system is ready to accept connections") {
		t.Errorf("Options.Log did not receive the server log; got:\n%s", log.String())
	}
	if _, err := os.Stat(filepath.Join(dir, dataSubdir, "PG_VERSION")); err != nil {
		t.Errorf("a given Dir must be kept: %v", err)
	}

	// Reusing the directory skips initdb and keeps the data.
	c2, err := Start(ctx, Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c2.Stop() })
	if got := queryString(t, ctx, c2.URL("postgres"), "SHOW max_prepared_transactions"); got != "20" {
		t.Errorf("reused cluster: max_prepared_transactions = %q, want 20", got)
	}
}

func TestStartFailureQuotesServerLog(t *testing.T) {
	requireBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, err := Start(ctx, Options{Settings: map[string]string{"shared_buffers": "not-a-size"}})
	if err == nil {
		t.Fatal("Start with an invalid setting succeeded")
	}
	if !strings.Contains(err.Error(), "shared_buffers") {
		t.Errorf("error does not quote the server log's complaint:\n%v", err)
	}
}

func TestSettingsValidation(t *testing.T) {
	for _, settings := range []map[string]string{
		{"port": "5432"},
		{"unix_socket_directories": "/tmp"},
		{"work_mem = 1\nfsync": "on"},
		{"work_mem": "1MB'\nfsync = 'on"},
	} {
		if _, err := clusterSettings(Options{Settings: settings}); err == nil {
			t.Errorf("clusterSettings(%q) succeeded, want an error", settings)
		}
	}
}
