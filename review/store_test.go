package review

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/airlock-dev/airlock/migrate"
)

func TestRecordGetPending(t *testing.T) {
	e := newEnv(t)
	opt := migrate.Options{StatementTimeout: 7 * time.Second, LockTimeout: 1500 * time.Millisecond,
		LargeTableRows: 50, RowsAffectedWarn: 5, Progress: func(int, int, string) {}}
	first := e.newChange("ALTER TABLE orders ADD COLUMN discount integer;\nUPDATE orders SET discount = 5 WHERE status = 'paid'",
		"support", ModeReplay, opt)
	if err := e.store.Record(e.ctx, first); err != nil {
		t.Fatal(err)
	}
	second := e.record("UPDATE invoices SET paid = true WHERE id = 1", "billing", ModeReplay)

	if _, err := uuid.Parse(first.ID); err != nil {
		t.Errorf("Record made id %q: %v", first.ID, err)
	}
	if first.Status != StatusPending || first.CreatedAt.IsZero() {
		t.Errorf("recorded change: status %q, created %v", first.Status, first.CreatedAt)
	}
	if ttl := first.ExpiresAt.Sub(first.CreatedAt); ttl != time.Hour {
		t.Errorf("expires %v after creation, want the 1h TTL", ttl)
	}

	got, err := e.store.Get(e.ctx, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := *first
	want.TTL = 0
	want.Options.Progress = nil
	if got.AppliedBy == "" {
		t.Error("AppliedBy is empty: the database sets it to the login that recorded the change")
	}
	want.AppliedBy = got.AppliedBy
	got.CreatedAt, got.ExpiresAt = got.CreatedAt.UTC(), got.ExpiresAt.UTC()
	want.CreatedAt, want.ExpiresAt = want.CreatedAt.UTC(), want.ExpiresAt.UTC()
	if !reflect.DeepEqual(got.Statements, want.Statements) {
		t.Errorf("statements:\n got %+v\nwant %+v", got.Statements, want.Statements)
	}
	// The row images stay in Effects: the stored report never holds them.
	wantReport := *want.Report
	wantReport.Statements = slices.Clone(wantReport.Statements)
	for i := range wantReport.Statements {
		wantReport.Statements[i].Rows = nil
	}
	want.Report = &wantReport
	if !reflect.DeepEqual(got.Report, want.Report) {
		t.Errorf("report:\n got %+v\nwant %+v", got.Report, want.Report)
	}
	got.Statements, got.Report, want.Statements, want.Report = nil, nil, nil, nil
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("Get:\n got %+v\nwant %+v", *got, want)
	}
	if first.Statements[0].QualifiedSQL == "" {
		t.Error("the guard gave no qualified SQL: the replay would depend on search_path")
	}
	if p := first.Plan(); len(p.Statements) != 2 || p.Fingerprint == "" || p.Statements[1].QualifiedSQL == "" {
		t.Errorf("Plan() = %+v", p)
	}

	pending, err := e.store.Pending(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 2 || pending[0].ID != first.ID || pending[1].ID != second.ID {
		t.Fatalf("Pending: %d changes, want first then second", len(pending))
	}
	if _, err := e.store.Rollback(e.ctx, first.ID, "bob", ""); err != nil {
		t.Fatal(err)
	}
	if pending, _ = e.store.Pending(e.ctx); len(pending) != 1 || pending[0].ID != second.ID {
		t.Errorf("Pending after a rollback: %d changes", len(pending))
	}
}

func TestRecordRefuses(t *testing.T) {
	e := newEnv(t)
	base := e.newChange("UPDATE orders SET notes = 'x' WHERE id = 1", "support", ModeReplay, migrate.Options{})
	for _, tc := range []struct {
		name   string
		change func(c *Change)
		want   string
	}{
		{"no ticket", func(c *Change) { c.Ticket = " " }, "ticket"},
		{"no scope", func(c *Change) { c.Scope = "" }, "scope"},
		{"no statements", func(c *Change) { c.Statements = nil }, "no statements"},
		{"no report", func(c *Change) { c.Report = nil }, "no report"},
		{"no expiry", func(c *Change) { c.TTL = 0 }, "expiry"},
		{"unknown mode", func(c *Change) { c.Mode = "bogus" }, "unknown mode"},
		{"branch without branch id", func(c *Change) { c.Mode = ModeBranch }, "branch id"},
		{"replay with gid", func(c *Change) { c.GID = NewGID() }, "no prepared transaction id"},
		{"prepared without gid", func(c *Change) { c.Mode = ModePrepared }, "invalid prepared transaction id"},
		{"injected gid", func(c *Change) { c.Mode, c.GID = ModePrepared, "airlock_x'; DROP TABLE orders; --" }, "invalid prepared"},
		{"bad id", func(c *Change) { c.ID = "42" }, "not a UUID"},
		{"effects of another plan", func(c *Change) { c.Effects.RowsAffected = []int64{1, 2} }, "effects cover 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := *base
			tc.change(&c)
			err := e.store.Record(e.ctx, &c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Record: err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
	if n := e.queryInt("SELECT count(*) FROM airlock.changes"); n != 0 {
		t.Errorf("%d changes recorded", n)
	}
}

func TestGetInScope(t *testing.T) {
	e := newEnv(t)
	mine := e.record("UPDATE orders SET notes = 'x' WHERE id = 1", "support", ModeReplay)
	theirs := e.record("UPDATE orders SET notes = 'y' WHERE id = 2", "billing", ModeReplay)

	if c, err := e.store.GetInScope(e.ctx, mine.ID, "support"); err != nil || c.ID != mine.ID {
		t.Fatalf("own change: %v", err)
	}
	if c, err := e.store.GetInScope(e.ctx, strings.ToUpper(mine.ID), "support"); err != nil || c.ID != mine.ID {
		t.Fatalf("own change, upper case id: %v", err)
	}
	missing := uuid.NewString()
	_, errOther := e.store.GetInScope(e.ctx, theirs.ID, "support")
	_, errMissing := e.store.GetInScope(e.ctx, missing, "support")
	if !errors.Is(errOther, ErrNotFound) || !errors.Is(errMissing, ErrNotFound) {
		t.Fatalf("another scope's change: %v; a missing one: %v; want ErrNotFound for both", errOther, errMissing)
	}
	// Identical apart from the id the caller gave.
	if strings.ReplaceAll(errOther.Error(), theirs.ID, missing) != errMissing.Error() {
		t.Errorf("another scope's change reads %q, a missing one %q", errOther, errMissing)
	}
	for _, id := range []string{"", "not-a-uuid", "'; DROP TABLE orders; --"} {
		if _, err := e.store.GetInScope(e.ctx, id, "support"); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetInScope(%q): %v, want ErrNotFound", id, err)
		}
		if _, err := e.store.Get(e.ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q): %v, want ErrNotFound", id, err)
		}
	}
}

// TestEnsureSchemaTwice: the DDL is idempotent and safe to run at once
// from several processes.
func TestEnsureSchemaTwice(t *testing.T) {
	e := newEnv(t)
	errs := make(chan error, 4)
	for range 4 {
		go func() { errs <- EnsureSchema(e.ctx, e.pool) }()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
