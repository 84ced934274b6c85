package doctor

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlock-dev/airlock/internal/pgtest"
	"github.com/airlock-dev/airlock/review"
	"github.com/airlock-dev/airlock/scopes"
)

// The judgement covers what a test database cannot hold cheaply: captures
// past the size worth a WARN.
func TestJudgeUndo(t *testing.T) {
	t.Parallel()
	earliest := time.Date(2026, 12, 12, 9, 30, 0, 0, time.UTC)
	on := undoFacts{write: true, on: true, login: "alice", schema: true, tables: 2, captures: true}
	with := func(f func(*undoFacts)) undoFacts {
		u := on
		f(&u)
		return u
	}
	tests := []struct {
		name       string
		facts      undoFacts
		wantStatus Status
		wantDetail []string // substrings
		wantFix    string   // substring; "" means the fix must be empty
	}{
		{"no write section", undoFacts{}, OK, []string{"not needed: the scope has no write section"}, ""},
		{"undo off", undoFacts{write: true}, OK, []string{"not needed: write.undo is off"}, ""},
		{"no airlock schema", undoFacts{write: true, on: true}, OK, []string{"no captures yet: the airlock schema does not exist"}, ""},
		{"no undo tables", undoFacts{write: true, on: true, schema: true}, OK,
			[]string{"no captures yet: airlock.undo_rows and airlock.undo_captures do not exist"}, ""},
		{"empty", with(func(u *undoFacts) { u.bytes, u.counted = 40960, true }), OK,
			[]string{"take 40.0 KiB", "no live captures"}, ""},
		{"live captures", with(func(u *undoFacts) { u.bytes, u.counted, u.live, u.earliest = 3<<20, true, 2, &earliest }), OK,
			[]string{"take 3.0 MiB", "2 live captures, the earliest expiry 2026-12-12 09:30 UTC"}, ""},
		{"one overdue", with(func(u *undoFacts) { u.bytes, u.counted, u.live, u.expired, u.earliest = 8192, true, 1, 1, &earliest }), OK,
			[]string{"1 live capture,", "(1 past its retention, left for the reaper to purge)"}, ""},
		{"not readable", with(func(u *undoFacts) { u.bytes = 16384 }), OK,
			[]string{"take 16.0 KiB", "alice may not read the captures, so they are not counted"}, ""},
		{"trash", with(func(u *undoFacts) { u.counted, u.trash, u.trashTables, u.trashBytes = true, true, 1, 1000 }), OK,
			[]string{"airlock_trash holds 1 table, 1000 bytes"}, ""},
		{"large", with(func(u *undoFacts) { u.bytes, u.counted, u.live, u.earliest = 3<<30, true, 9, &earliest }), WARN,
			[]string{"take 3.0 GiB", "9 live captures", ": more than 1.0 GiB kept for airlock revert"},
			`airlock reap does it once); to keep less, shorten write.undo.retention in s.json (e.g. "3d"; from 1h to 90d) and run airlock scope apply --scope s.json`},
		// What airlock_trash keeps counts toward the same disk.
		{"large trash", with(func(u *undoFacts) { u.bytes, u.trash, u.trashTables, u.trashBytes = 8192, true, 3, 2<<30 }), WARN,
			[]string{"airlock_trash holds 3 tables, 2.0 GiB", "more than 1.0 GiB"}, "write.undo.retention"},
		{"exactly the limit", with(func(u *undoFacts) { u.bytes = undoWarnBytes }), OK, []string{"take 1.0 GiB"}, ""},
	}
	for _, tt := range tests {
		c := judgeUndo(tt.facts, "s.json")
		if c.Name != CheckUndo || c.Status != tt.wantStatus {
			t.Errorf("%s: %s %s %q, want %s", tt.name, c.Name, c.Status, c.Detail, tt.wantStatus)
		}
		for _, d := range tt.wantDetail {
			if !strings.Contains(c.Detail, d) {
				t.Errorf("%s: detail %q, want it to contain %q", tt.name, c.Detail, d)
			}
		}
		if tt.wantFix == "" && c.Fix != "" || !strings.Contains(c.Fix, tt.wantFix) {
			t.Errorf("%s: fix %q, want %q", tt.name, c.Fix, tt.wantFix)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{
		0: "0 bytes", 1: "1 byte", 1023: "1023 bytes", 1024: "1.0 KiB", 1536: "1.5 KiB",
		8 << 20: "8.0 MiB", 1 << 30: "1.0 GiB", 5 << 40: "5.0 TiB", 2 << 50: "2.0 PiB", 4096 << 50: "4096.0 PiB",
	} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// On a database with captures (and a table in airlock_trash), the check
// reports their size to any login, and their count to one that may read
// them; with undo off it does not look.
func TestRunUndo(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	adminURL := pgtest.NewDatabase(t)
	login := uniqueName("doctor_nobody")
	dropRolesAtCleanup(t, adminURL, login)
	admin := newPool(t, ctx, adminURL)

	// Before scope apply or serve made the airlock schema.
	if c := find(t, Run(ctx, admin, newScope(t, "replay"), Options{}), CheckUndo); c.Status != OK ||
		!strings.Contains(c.Detail, "no captures yet: the airlock schema does not exist") {
		t.Errorf("no schema: %+v", c)
	}

	if err := review.EnsureSchema(ctx, admin); err != nil {
		t.Fatal(err)
	}
	// Two live captures, one of them past its expiry, and one purged
	// (kept as a row, its images gone), with images big enough to go to
	// TOAST.
	mustExec(t, ctx, admin, `
INSERT INTO airlock.undo_captures (change_id, scope, expires_at, purged_at) VALUES
	('00000000-0000-0000-0000-000000000001', 'doctor', now() + interval '7 days', NULL),
	('00000000-0000-0000-0000-000000000002', 'doctor', now() - interval '1 hour', NULL),
	('00000000-0000-0000-0000-000000000003', 'doctor', now() - interval '8 days', now() - interval '1 day')`)
	mustExec(t, ctx, admin, `
INSERT INTO airlock.undo_rows (change_id, stmt, relation, side, image)
SELECT '00000000-0000-0000-0000-000000000001', 1, 'public.orders', side,
	jsonb_build_object('id', g, 'note', (SELECT string_agg(md5(g::text || i::text), '') FROM generate_series(1, 100) i))
FROM generate_series(1, 300) g, unnest(ARRAY['b', 'a']::"char"[]) side`)
	// What the trash holds (airlock's schema made it): a plain table and
	// a partitioned one, whose partition is counted with it.
	mustExec(t, ctx, admin, `CREATE TABLE airlock_trash.orders_dropped AS SELECT * FROM public.orders`)
	mustExec(t, ctx, admin, `CREATE TABLE airlock_trash.events_dropped (id int, at date) PARTITION BY RANGE (at)`)
	mustExec(t, ctx, admin, `CREATE TABLE airlock_trash.events_dropped_2026 PARTITION OF airlock_trash.events_dropped
		FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')`)
	mustExec(t, ctx, admin, `INSERT INTO airlock_trash.events_dropped SELECT g, date '2026-01-01' + g FROM generate_series(1, 300) g`)

	var undoBytes, trashBytes int64
	var earliest time.Time
	err := admin.QueryRow(ctx, `
SELECT pg_total_relation_size('airlock.undo_rows') + pg_total_relation_size('airlock.undo_captures'),
	pg_total_relation_size('airlock_trash.orders_dropped') + pg_total_relation_size('airlock_trash.events_dropped_2026'),
	(SELECT min(expires_at) FROM airlock.undo_captures WHERE purged_at IS NULL)`).Scan(&undoBytes, &trashBytes, &earliest)
	if err != nil {
		t.Fatal(err)
	}
	if undoBytes < 100<<10 {
		t.Fatalf("the captures take %d bytes: too few to tell them from empty tables", undoBytes)
	}
	size := "airlock.undo_rows and airlock.undo_captures take " + formatBytes(undoBytes) + " "
	trash := "airlock_trash holds 2 tables, " + formatBytes(trashBytes)

	q := func(name string) string { return pgx.Identifier{name}.Sanitize() }
	mustExec(t, ctx, admin, "CREATE ROLE "+q(login)+" LOGIN")
	nobody := newPool(t, ctx, asUser(t, adminURL, login))

	undoOff := newScope(t, "replay")
	off := false
	undoOff.Write.Undo.Enabled = &off

	tests := []struct {
		name       string
		pool       *pgxpool.Pool
		scope      *scopes.Scope
		wantDetail []string
	}{
		{"undo off", admin, undoOff, []string{"not needed: write.undo is off"}},
		{"no write section", admin, newScope(t, ""), []string{"not needed: the scope has no write section"}},
		{"admin", admin, newScope(t, "replay"), []string{size,
			"2 live captures, the earliest expiry " + earliest.UTC().Format("2006-01-02 15:04 UTC"),
			"(1 past its retention, left for the reaper to purge)", trash}},
		// No USAGE on the airlock schema, let alone SELECT: the catalog
		// still says how big the tables are.
		{"login without privileges", nobody, newScope(t, "prepared"), []string{size,
			login + " may not read the captures, so they are not counted", trash}},
	}
	for _, tt := range tests {
		c := find(t, Run(ctx, tt.pool, tt.scope, Options{}), CheckUndo)
		if c.Status != OK || c.Fix != "" {
			t.Errorf("%s: %+v, want OK", tt.name, c)
		}
		for _, d := range tt.wantDetail {
			if !strings.Contains(c.Detail, d) {
				t.Errorf("%s: detail %q, want it to contain %q", tt.name, c.Detail, d)
			}
		}
	}
}
