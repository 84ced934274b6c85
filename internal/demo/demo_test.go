package demo

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/airlock-dev/airlock/internal/pgcluster"
	"github.com/airlock-dev/airlock/scopes"
)

// The end-to-end test of the tour is cmd/airlock's TestDemo: the tour needs
// the built binary.

func TestScopeIsValid(t *testing.T) {
	path := filepath.Join(t.TempDir(), "scope.json")
	if err := os.WriteFile(path, ScopeJSON, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := scopes.Load(path)
	if err != nil {
		t.Fatalf("embedded scope: %v", err)
	}
	if s.URLEnv() != urlEnv {
		t.Errorf("scope reads the URL from %s, want %s", s.URLEnv(), urlEnv)
	}
	if !slices.Contains(s.EnabledTools(), scopes.ToolApplyMigration) {
		t.Errorf("scope enables %v, want the write tools too", s.EnabledTools())
	}
}

func TestWrap(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want []string
	}{
		{"short", 10, []string{"short"}},
		{"one two three four", 9, []string{"one two", "three", "four"}},
		{"- public.orders (table, ~25000 rows)", 20, []string{"- public.orders", "  (table, ~25000", "  rows)"}},
		{"2. [update] UPDATE orders SET x = 1", 20, []string{"2. [update] UPDATE", "   orders SET x = 1"}},
		{"  + column added", 10, []string{"  + column", "    added"}},
		{"averyveryverylongword and more", 8, []string{"averyveryverylongword", "and more"}},
	}
	for _, tt := range tests {
		if got := wrap(tt.in, tt.n); !slices.Equal(got, tt.want) {
			t.Errorf("wrap(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 25000: "25,000", 1234567: "1,234,567", -4200: "-4,200"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/usr/local/bin/airlock": "/usr/local/bin/airlock",
		"postgres://postgres@127.0.0.1:5432/airlock_demo?sslmode=disable": "'postgres://postgres@127.0.0.1:5432/airlock_demo?sslmode=disable'",
		"/home/a b/airlock": "'/home/a b/airlock'",
		"it's":              `'it'\''s'`,
		"":                  "''",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestCallRendering(t *testing.T) {
	var b bytes.Buffer
	p := newPrinter(&b)
	p.call("query_readonly", []arg{{"sql", "DROP TABLE orders"}})
	p.call("migrate_dry_run", []arg{{"sql", "ALTER TABLE t ADD c int;\nUPDATE t SET c = 1"}})
	want := `
   agent → query_readonly(sql: "DROP TABLE orders")

   agent → migrate_dry_run
           sql: ALTER TABLE t ADD c int;
                UPDATE t SET c = 1
`
	if b.String() != want {
		t.Errorf("rendering:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestBlockCutsLines(t *testing.T) {
	var b bytes.Buffer
	newPrinter(&b).block("> ", "  ", []string{"a", "b", "c", "d"}, 2)
	if want := "> a\n  b\n  … 2 more lines\n"; b.String() != want {
		t.Errorf("block = %q, want %q", b.String(), want)
	}
}

func TestInstallCommand(t *testing.T) {
	if got := installCommand("linux"); got != "sudo apt-get install -y postgresql" {
		t.Errorf("linux: %q", got)
	}
	if got := installCommand("darwin"); got != "brew install postgresql@15" {
		t.Errorf("darwin: %q", got)
	}
	if got := installCommand("plan9"); !strings.Contains(got, "apt-get") {
		t.Errorf("other systems get the general hint, got %q", got)
	}
}

func TestStopWithoutKeptDemo(t *testing.T) {
	if err := Stop(context.Background(), t.TempDir(), &bytes.Buffer{}); !errors.Is(err, ErrNotKept) {
		t.Errorf("Stop with no state = %v, want ErrNotKept", err)
	}
}

// A state file that names some other directory must never get it removed.
func TestStopRefusesForeignDirectory(t *testing.T) {
	stateDir := t.TempDir()
	victim := t.TempDir()
	if err := writeState(stateDir, state{Dir: victim}); err != nil {
		t.Fatal(err)
	}
	if err := Stop(context.Background(), stateDir, &bytes.Buffer{}); err == nil {
		t.Fatal("Stop accepted a state naming a directory that is not a demo cluster")
	}
	if _, err := os.Stat(victim); err != nil {
		t.Errorf("Stop removed %s: %v", victim, err)
	}
}

// A kept demo whose server is gone (after a reboot, say) is cleared, so that
// a new one can start.
func TestClearStaleState(t *testing.T) {
	stateDir := t.TempDir()
	dir, err := os.MkdirTemp(t.TempDir(), keptDirPrefix)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeState(stateDir, state{Dir: dir, Port: 1}); err != nil {
		t.Fatal(err)
	}
	if err := clearStaleState(context.Background(), stateDir); err != nil {
		t.Fatal(err)
	}
	if _, err := readState(stateDir); !errors.Is(err, ErrNotKept) {
		t.Errorf("stale state still there: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("stale cluster directory still there: %v", err)
	}
}

// A kept cluster blocks a second kept demo until Stop, run as `--stop`
// would from another process, stops it and removes it.
func TestStopKeptCluster(t *testing.T) {
	binDir, err := pgcluster.FindBinDir()
	if err != nil {
		t.Fatal(err) // never skip: CI must notice a missing PostgreSQL
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp(shortTempDir(), keptDirPrefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	c, err := pgcluster.Start(ctx, pgcluster.Options{Dir: dir, BinDir: binDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })
	if err := c.Detach(); err != nil {
		t.Fatal(err)
	}
	stateDir := t.TempDir()
	st := state{Dir: c.Dir(), BinDir: binDir, Port: c.Port(), URL: c.URL("postgres")}
	if err := writeState(stateDir, st); err != nil {
		t.Fatal(err)
	}

	if err := clearStaleState(ctx, stateDir); !errors.Is(err, ErrAlreadyKept) {
		t.Fatalf("clearStaleState with a running kept demo = %v, want ErrAlreadyKept", err)
	}
	var out bytes.Buffer
	if err := Stop(ctx, stateDir, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "Stopped the kept demo") {
		t.Errorf("Stop said %q", out.String())
	}
	if conn, err := pgx.Connect(ctx, st.URL); err == nil {
		conn.Close(ctx)
		t.Error("the kept cluster still accepts connections after Stop")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s is left behind after Stop (stat: %v)", dir, err)
	}
	if _, err := readState(stateDir); !errors.Is(err, ErrNotKept) {
		t.Errorf("state still there after Stop: %v", err)
	}
}

func TestLastingBinary(t *testing.T) {
	dir := t.TempDir()
	built := filepath.Join(dir, "go-build1234", "b001", "exe", "airlock")
	if err := os.MkdirAll(filepath.Dir(built), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(built, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	os.MkdirAll(state, 0o700)
	got, err := lastingBinary(built, state)
	if err != nil || got != filepath.Join(state, keptBinary) {
		t.Fatalf("go run binary: %q, %v", got, err)
	}
	if fi, err := os.Stat(got); err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("copy: %v %v", fi, err)
	}
	lasting := filepath.Join(dir, "bin", "airlock")
	if got, err := lastingBinary(lasting, state); err != nil || got != lasting {
		t.Fatalf("built binary: %q, %v", got, err)
	}
}
