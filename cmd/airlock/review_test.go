package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlock-dev/airlock/internal/pgtest"
	"github.com/airlock-dev/airlock/migrate"
	"github.com/airlock-dev/airlock/review"
	"github.com/airlock-dev/airlock/sqlguard"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// reviewDB is a seeded database with airlock's schema, named by
// AIRLOCK_DATABASE_URL for the test.
type reviewDB struct {
	t     *testing.T
	ctx   context.Context
	url   string
	store *review.Store
}

func newReviewDB(t *testing.T) *reviewDB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	url := pgtest.NewDatabase(t)
	t.Setenv(reviewEnv, url)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := review.EnsureSchema(ctx, pool); err != nil {
		t.Fatal(err)
	}
	// The scope as airlock scope apply registers it; these tests review as
	// the superuser, which may run a change as itself.
	doc, err := os.ReadFile(filepath.Join("..", "..", "testdata", "scopes", "support.json"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO airlock.scopes (name, document, version, read_role, write_role)
		VALUES ('support', $1, 'test', 'airlock_support_read', 'postgres')`, doc); err != nil {
		t.Fatal(err)
	}
	return &reviewDB{t: t, ctx: ctx, url: url, store: review.NewStore(pool, nil)}
}

// record dry-runs (replay) or prepares (prepared) sql and records it.
func (d *reviewDB) record(sql, summary string, mode review.Mode) *review.Change {
	d.t.Helper()
	return d.recordTicket("OPS-7", sql, summary, mode)
}

// recordTicket is record with the ticket given.
func (d *reviewDB) recordTicket(ticket, sql, summary string, mode review.Mode) *review.Change {
	d.t.Helper()
	w := &sqlguard.WritePolicy{
		Tables: map[string]bool{"public.orders": true},
		Allow:  map[string]bool{"update": true, "add_column": true},
	}
	plan, err := w.CheckMigration(sql)
	if err != nil {
		d.t.Fatal(err)
	}
	end, arg := migrate.EndRollback, migrate.RunArg{}
	if mode == review.ModePrepared {
		end, arg = migrate.EndPrepare, migrate.RunArg{GID: review.NewGID()}
	}
	rep, err := migrate.Run(d.ctx, pgtest.Connect(d.t, d.url), plan, migrate.Options{}, end, arg)
	if err != nil {
		d.t.Fatal(err)
	}
	c := review.NewChange(plan, rep, migrate.Options{})
	c.Ticket, c.Summary, c.SQL, c.Scope, c.Session = ticket, summary, sql, "support", "sess-1"
	c.Mode, c.GID, c.TTL = mode, arg.GID, 30*time.Minute
	if err := d.store.Record(d.ctx, c); err != nil {
		d.t.Fatal(err)
	}
	return c
}

func (d *reviewDB) exec(sql string, args ...any) {
	d.t.Helper()
	if _, err := pgtest.Connect(d.t, d.url).Exec(d.ctx, sql, args...); err != nil {
		d.t.Fatal(err)
	}
}

type cliStep struct {
	name       string
	args       []string
	code       int
	stdout     []string // substrings stdout must contain
	stderr     []string // substrings stderr must contain
	notStdout  []string // substrings stdout must not contain
	wantStatus map[string]review.Status
}

func runSteps(t *testing.T, d *reviewDB, steps []cliStep) {
	t.Helper()
	for _, s := range steps {
		var stdout, stderr bytes.Buffer
		code := run(d.ctx, s.args, strings.NewReader(""), &stdout, &stderr)
		if code != s.code {
			t.Errorf("%s: airlock %v: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", s.name, s.args, code, s.code, &stdout, &stderr)
		}
		for _, want := range s.stdout {
			if !strings.Contains(stdout.String(), want) {
				t.Errorf("%s: stdout does not contain %q:\n%s", s.name, want, &stdout)
			}
		}
		for _, want := range s.notStdout {
			if strings.Contains(stdout.String(), want) {
				t.Errorf("%s: stdout contains %q:\n%s", s.name, want, &stdout)
			}
		}
		for _, want := range s.stderr {
			if !strings.Contains(stderr.String(), want) {
				t.Errorf("%s: stderr does not contain %q:\n%s", s.name, want, &stderr)
			}
		}
		for id, want := range s.wantStatus {
			c, err := d.store.Get(d.ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if c.Status != want {
				t.Errorf("%s: change %s is %s, want %s", s.name, id, c.Status, want)
			}
		}
	}
}

func TestReviewCLI(t *testing.T) {
	d := newReviewDB(t)
	runSteps(t, d, []cliStep{
		{name: "empty", args: []string{"pending"}, stdout: []string{"no pending changes"}},
		{name: "empty json", args: []string{"pending", "--json"}, stdout: []string{"[]"}},
	})

	long := "Mark paid orders shipped \x1b[2J\x1b[31mand clear the screen " + strings.Repeat("and more ", 10)
	a := d.record("UPDATE orders SET status = 'shipped' WHERE status = 'paid'", long, review.ModeReplay)
	c := d.record("ALTER TABLE orders ADD COLUMN discount integer", "Add discount", review.ModeReplay)
	drifting := d.record("UPDATE orders SET notes = 'late' WHERE status = 'cancelled'", "Note cancelled orders", review.ModeReplay)
	expiring := d.record("UPDATE orders SET notes = 'x' WHERE id = 3", "Soon expired", review.ModeReplay)
	// Last: it holds its locks until committed.
	b := d.record("UPDATE orders SET notes = 'checked' WHERE id < 50", "Add notes", review.ModePrepared)
	missing := uuid.NewString()

	runSteps(t, d, []cliStep{
		{name: "pending table", args: []string{"pending"},
			stdout:    []string{"ID", "AGE", "TICKET", "SCOPE", "MODE", "RISK", "SUMMARY", "EXPIRES IN", a.ID, b.ID, "OPS-7", "support", "prepared", "replay", "in 29m", `\u{001B}[2J`, "…", "ROWS"},
			notStdout: []string{"\x1b", "and more and more and more and more and more and more"}},
		{name: "show", args: []string{"show", a.ID},
			stdout: []string{"change " + a.ID, "ticket:    OPS-7", "scope:     support", "session:   sess-1", "mode:      replay",
				"status:    pending", "SQL:\n  1 | UPDATE orders SET status = 'shipped' WHERE status = 'paid'", "risk:", "1. [update]", "schema diff: none", `\u{001B}[2J`},
			notStdout: []string{"\x1b"}},
		{name: "show prepared", args: []string{"show", b.ID},
			stdout: []string{"mode:      prepared (transaction " + b.GID + ")", "held locks at the end", "While pending, the prepared transaction holds: public.orders RowExclusiveLock"}},
		{name: "show unknown", args: []string{"show", missing}, code: 1, stderr: []string{"change " + missing + ": no such change"}},
		{name: "show garbage", args: []string{"show", "x'; DROP TABLE orders"}, code: 1, stderr: []string{"no such change"}},
		{name: "show no id", args: []string{"show"}, code: 2, stderr: []string{"usage: airlock show ID"}},

		{name: "commit without reviewer", args: []string{"commit", a.ID}, code: 2, stderr: []string{"usage: airlock commit ID (--reviewer NAME | --server URL)"},
			wantStatus: map[string]review.Status{a.ID: review.StatusPending}},
		{name: "commit blank reviewer", args: []string{"commit", a.ID, "--reviewer", " "}, code: 2},
		{name: "commit without id", args: []string{"commit", "--reviewer", "alice"}, code: 2},
		{name: "commit unknown flag", args: []string{"commit", a.ID, "--reviewer", "alice", "--force"}, code: 2},
		// The prepared change holds row locks the others would wait for.
		{name: "commit prepared", args: []string{"commit", b.ID, "--reviewer", "alice"},
			stdout: []string{"committed: change " + b.ID}, wantStatus: map[string]review.Status{b.ID: review.StatusCommitted}},
		{name: "commit", args: []string{"commit", a.ID, "--reviewer", "alice"},
			stdout: []string{"committed: change " + a.ID + " (ticket OPS-7) by alice at "}, wantStatus: map[string]review.Status{a.ID: review.StatusCommitted}},
		{name: "commit again", args: []string{"commit", "--reviewer", "bob", a.ID}, code: 1,
			stdout: []string{"refused: change " + a.ID + " was already committed by alice at "}},
		{name: "commit unknown", args: []string{"commit", missing, "--reviewer", "alice"}, code: 1, stderr: []string{"no such change"}},

		{name: "rollback without reviewer", args: []string{"rollback", c.ID, "--reason", "no"}, code: 2},
		{name: "rollback", args: []string{"rollback", c.ID, "--reviewer", "bob", "--reason", "not now"},
			stdout: []string{"rolled back: change " + c.ID + " (ticket OPS-7) by bob"}, wantStatus: map[string]review.Status{c.ID: review.StatusRolledBack}},
		{name: "commit rolled back", args: []string{"commit", c.ID, "--reviewer", "alice"}, code: 1,
			stdout: []string{"refused: change " + c.ID + " was already rolled back by bob at ", ": not now"}},
		{name: "show decided", args: []string{"show", c.ID}, stdout: []string{"status:    rolled_back", "by bob", "reason:    not now"}},
	})

	d.exec("UPDATE orders SET status = 'cancelled' WHERE id IN (SELECT id FROM orders WHERE status <> 'cancelled' ORDER BY id LIMIT 2)")
	d.exec("UPDATE airlock.changes SET expires_at = now() - interval '1 minute' WHERE id = $1", expiring.ID)
	runSteps(t, d, []cliStep{
		{name: "pending shows overdue", args: []string{"pending"}, stdout: []string{expiring.ID, "expired 1m ago"}},
		{name: "drift", args: []string{"commit", drifting.ID, "--reviewer", "alice"}, code: 1,
			stdout:     []string{"drifted: change " + drifting.ID, "migration drifted since the dry run, nothing committed: statement 1 affected"},
			wantStatus: map[string]review.Status{drifting.ID: review.StatusDrifted}},
		{name: "reap", args: []string{"reap"}, stdout: []string{"expired: 1\n", "orphan prepared transactions rolled back: 0"},
			wantStatus: map[string]review.Status{expiring.ID: review.StatusExpired}},
		{name: "commit expired", args: []string{"commit", expiring.ID, "--reviewer", "alice"}, code: 1,
			stdout: []string{"refused: change " + expiring.ID + " expired at ", "can never be committed"}},
		{name: "reap again", args: []string{"reap"}, stdout: []string{"expired: 0\n"}},
		{name: "nothing left", args: []string{"pending"}, stdout: []string{"no pending changes"}},
		{name: "pending extra arg", args: []string{"pending", "x"}, code: 2},
	})
}

func TestPendingJSON(t *testing.T) {
	d := newReviewDB(t)
	a := d.record("UPDATE orders SET notes = 'a' WHERE id = 1", "first", review.ModeReplay)
	b := d.record("UPDATE orders SET notes = 'b' WHERE id = 2", "second", review.ModePrepared)
	var stdout, stderr bytes.Buffer
	if code := run(d.ctx, []string{"pending", "--json"}, strings.NewReader(""), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, &stderr)
	}
	var got []pendingJSON
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("%v:\n%s", err, &stdout)
	}
	if len(got) != 2 || got[0].ID != a.ID || got[1].ID != b.ID {
		t.Fatalf("got %+v", got)
	}
	g := got[1]
	if g.Ticket != "OPS-7" || g.Summary != "second" || g.Scope != "support" || g.Mode != "prepared" || g.Risk == "" ||
		g.SQL != "UPDATE orders SET notes = 'b' WHERE id = 2" || g.ExpiresInSeconds < 1700 || g.ExpiresInSeconds > 1800 || g.AgeSeconds < 0 || g.RowsAffected != 1 {
		t.Errorf("got %+v", g)
	}
	for _, key := range []string{`"id"`, `"age_seconds"`, `"ticket"`, `"scope"`, `"mode"`, `"risk"`, `"summary"`, `"expires_in_seconds"`, `"sql"`, `"rows_affected"`} {
		if !strings.Contains(stdout.String(), key) {
			t.Errorf("no %s in\n%s", key, &stdout)
		}
	}
}

func TestReviewCLINoDatabase(t *testing.T) {
	t.Setenv(reviewEnv, "")
	for _, args := range [][]string{{"pending"}, {"show", uuid.NewString()}, {"commit", uuid.NewString(), "--reviewer", "a"}, {"reap"}} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr); code != 1 {
			t.Errorf("%v: exit %d, want 1", args, code)
		}
		if !strings.Contains(stderr.String(), "AIRLOCK_DATABASE_URL is not set") {
			t.Errorf("%v: stderr %q", args, &stderr)
		}
	}
}

func TestHuman(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"}, {59 * time.Second, "59s"}, {90 * time.Second, "1m"}, {-5 * time.Minute, "5m"},
		{3*time.Hour + 5*time.Minute, "3h05m"}, {50 * time.Hour, "2d02h"},
	} {
		if got := human(tc.d); got != tc.want {
			t.Errorf("human(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}
