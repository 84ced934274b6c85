package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/airlock-dev/airlock/internal/pgtest"
	"github.com/airlock-dev/airlock/review"
)

func TestHumanHandler(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	store, audit := reviewLoggers("commit", &buf, false)

	store.Info("review: reaped", "expired", 1)
	store.Warn("review: slow\ncatalog", "table", "public.orders\x1b[2J")
	store.Error("review: roll back an expired change", "change_id", "c1", "err", errors.New("connection reset"))
	store.With("scope", "support").WithGroup("g").Warn("grouped", "k", 1)
	if got, want := buf.String(), `airlock commit: warning: review: slow\ncatalog (table=public.orders\u{001B}[2J)`+"\n"+
		"airlock commit: error: review: roll back an expired change: connection reset (change_id=c1)\n"+
		"airlock commit: warning: grouped (scope=support, g.k=1)\n"; got != want {
		t.Errorf("store lines:\n%s\nwant:\n%s", got, want)
	}

	// The audit log's events stay off the terminal until it says the
	// database may not have them: then they follow as JSON.
	buf.Reset()
	audit.Info("audit", "tool", "commit", "change_id", "c1")
	if buf.Len() != 0 {
		t.Fatalf("an audit event was printed: %q", &buf)
	}
	audit.Error("audit write failed; events are in this log only", "err", errors.New("permission denied"), "events", 1)
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 3 ||
		lines[0] != "airlock commit: error: audit write failed; events are in this log only: permission denied (events=1)" ||
		!strings.HasPrefix(lines[1], "airlock commit: the audit events may be missing from airlock.audit_log") {
		t.Fatalf("after a failed write:\n%s", &buf)
	}
	var ev map[string]any
	if err := json.Unmarshal([]byte(lines[2]), &ev); err != nil || ev["msg"] != "audit" || ev["tool"] != "commit" || ev["change_id"] != "c1" {
		t.Errorf("held event %q: %v", lines[2], err)
	}
	// Printed once.
	buf.Reset()
	audit.Warn("audit queue full; event written to stderr only", "tool", "commit")
	if strings.Count(buf.String(), "\n") != 1 {
		t.Errorf("held events printed twice:\n%s", &buf)
	}

	buf.Reset()
	store, _ = reviewLoggers("commit", &buf, true)
	store.Info("review: reaped", "expired", 1)
	if err := json.Unmarshal(buf.Bytes(), &ev); err != nil || ev["level"] != slog.LevelInfo.String() {
		t.Errorf("--log-json: %q: %v", &buf, err)
	}
}

// hasJSONLine reports whether some line of s is a JSON object.
func hasJSONLine(s string) bool {
	for _, line := range strings.Split(s, "\n") {
		var v map[string]any
		if json.Unmarshal([]byte(line), &v) == nil {
			return true
		}
	}
	return false
}

// The reviewer's commands print human output only; --log-json adds the
// JSON log lines; the audit rows are written either way.
func TestReviewLogJSON(t *testing.T) {
	d := newReviewDB(t)
	a := d.record("UPDATE orders SET notes = 'a' WHERE id = 1", "first", review.ModeReplay)
	b := d.record("UPDATE orders SET notes = 'b' WHERE id = 2", "second", review.ModeReplay)
	c := d.record("UPDATE orders SET notes = 'c' WHERE id = 3", "third", review.ModeReplay)

	cli := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := run(d.ctx, args, strings.NewReader(""), &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	auditRows := func(id string) int {
		var n int
		if err := pgtest.Connect(t, d.url).QueryRow(d.ctx,
			"SELECT count(*) FROM airlock.audit_log WHERE change_id = $1 AND tool IN ('commit', 'rollback')", id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	for _, args := range [][]string{{"pending"}, {"pending", "--json"}, {"show", a.ID}, {"branches"}, {"commit", a.ID, "--reviewer", "alice"}, {"reap"}} {
		code, stdout, stderr := cli(args...)
		if code != 0 || stderr != "" || stdout == "" {
			t.Errorf("airlock %v: exit %d, stderr %q (want nothing), stdout:\n%s", args, code, stderr, stdout)
		}
		if args[0] != "pending" && hasJSONLine(stdout) {
			t.Errorf("airlock %v printed JSON on stdout:\n%s", args, stdout)
		}
	}
	if n := auditRows(a.ID); n != 1 {
		t.Errorf("commit without --log-json: %d audit rows, want 1", n)
	}

	code, stdout, stderr := cli("commit", b.ID, "--reviewer", "alice", "--log-json")
	if code != 0 || !strings.HasPrefix(stdout, "committed: change "+b.ID) || hasJSONLine(stdout) {
		t.Errorf("commit --log-json: exit %d, stdout:\n%s", code, stdout)
	}
	var ev map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(stderr)), &ev); err != nil || ev["msg"] != "audit" || ev["change_id"] != b.ID || ev["actor"] != "alice" {
		t.Errorf("commit --log-json: stderr %q (%v), want the audit event as JSON", stderr, err)
	}
	if n := auditRows(b.ID); n != 1 {
		t.Errorf("commit --log-json: %d audit rows, want 1", n)
	}

	// When the audit row cannot be written, the default output still keeps
	// the event: after the error line, as JSON.
	d.exec("ALTER TABLE airlock.audit_log ADD CONSTRAINT refuse_rows CHECK (false) NOT VALID")
	code, stdout, stderr = cli("rollback", c.ID, "--reviewer", "bob", "--reason", "no")
	if code != 0 || !strings.HasPrefix(stdout, "rolled back: change "+c.ID) {
		t.Errorf("rollback: exit %d, stdout:\n%s", code, stdout)
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "airlock rollback: error: audit write failed") ||
		json.Unmarshal([]byte(lines[2]), &ev) != nil || ev["change_id"] != c.ID || ev["tool"] != "rollback" {
		t.Errorf("rollback with a failing audit write: stderr:\n%s", stderr)
	}
}

// On a database airlock was never set up in, the reviewer's commands say so
// and create nothing: not the schema, not a table.
func TestReviewNoSchema(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewEmptyDatabase(t)
	t.Setenv(reviewEnv, url)
	id := "4f0c7f53-5d63-4a4e-9c44-6c2f6b9f2a10"
	for _, args := range [][]string{
		{"pending"}, {"pending", "--json"}, {"show", id}, {"branches"},
		{"commit", id, "--reviewer", "alice"}, {"rollback", id, "--reviewer", "alice"}, {"reap"},
		{"merge", id, "--reviewer", "alice"}, {"discard", id, "--reviewer", "alice", "--log-json"},
	} {
		code, stdout, stderr := runCLI(args...)
		if want := "airlock " + args[0] + ": " + errNoSchema.Error() + "\n"; code != 1 || stdout != "" || stderr != want {
			t.Errorf("airlock %v: exit %d, stdout %q, stderr %q; want 1 and %q", args, code, stdout, stderr, want)
		}
	}
	conn := pgtest.Connect(t, url)
	var schema, tables int
	err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_namespace WHERE nspname = 'airlock'),
		(SELECT count(*) FROM pg_class WHERE relname IN ('changes', 'branches', 'audit_log', 'mask_keys'))`).Scan(&schema, &tables)
	if err != nil || schema != 0 || tables != 0 {
		t.Errorf("after the commands: %d airlock schemas, %d of its tables (%v); want none", schema, tables, err)
	}

	// A schema some other tool (or an old airlock) half made is named, and
	// left as it is.
	if _, err := conn.Exec(ctx, "CREATE SCHEMA airlock; CREATE TABLE airlock.changes (id uuid)"); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI("pending")
	if want := "airlock pending: airlock's schema in this database lacks airlock.audit_log, airlock.mask_keys, airlock.branches"; code != 1 || !strings.HasPrefix(stderr, want) {
		t.Errorf("half a schema: exit %d, stderr %q; want 1 and %q", code, stderr, want)
	}
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_class WHERE relnamespace = 'airlock'::regnamespace").Scan(&tables); err != nil || tables != 1 {
		t.Errorf("half a schema: airlock now has %d relations (%v), want 1", tables, err)
	}
}
