package server_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlock-dev/airlock/internal/pgtest"
	"github.com/airlock-dev/airlock/migrate"
	"github.com/airlock-dev/airlock/review"
	"github.com/airlock-dev/airlock/scopes"
)

// branchScope turns support.json into a branch-mode scope.
func branchScope(strategy review.Strategy, sampleRows, maxBranches int) func(*scopes.Scope) {
	return func(s *scopes.Scope) {
		s.Write.Mode = review.ModeBranch
		s.Write.Branch = &scopes.Branch{Strategy: string(strategy), SampleRows: sampleRows, TTL: 2 * time.Hour, MaxBranches: maxBranches}
	}
}

// sourceFingerprint is the source's fingerprint without the list of
// branch databases, which are other databases of the same cluster.
func sourceFingerprint(t *testing.T, url string) pgtest.Snapshot {
	t.Helper()
	s := pgtest.Fingerprint(t, url)
	for k := range s.Items {
		if strings.HasPrefix(k, "database airlock_br_") {
			delete(s.Items, k)
		}
	}
	return s
}

func databaseExists(t *testing.T, pool *pgxpool.Pool, name string) bool {
	t.Helper()
	var ok bool
	if err := pool.QueryRow(context.Background(), "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

// branchOf returns the branch of a change applied in branch mode.
func branchOf(t *testing.T, store *review.Store, changeID string) *review.Branch {
	t.Helper()
	ctx := context.Background()
	c, err := store.Get(ctx, changeID)
	if err != nil {
		t.Fatal(err)
	}
	if c.Mode != review.ModeBranch || c.BranchID == "" {
		t.Fatalf("change %s: mode %q branch %q, want a branch change", changeID, c.Mode, c.BranchID)
	}
	b, err := store.GetBranch(ctx, c.BranchID)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBranchSessionSeesOwnWorkThenMerge: in branch mode (template
// strategy) the agent adds a column and rows on its branch and reads them
// back while the source stays identical; the merge applies exactly the
// change log to the source and drops the branch.
func TestBranchSessionSeesOwnWorkThenMerge(t *testing.T) {
	h := newHarness(t, "support.json", branchScope(review.StrategyTemplate, 0, 5))
	ctx := context.Background()
	store := review.NewStore(h.pool, nil)
	before := sourceFingerprint(t, h.url)

	// Before the branch exists the dry run uses the source.
	if _, out, isErr := h.dryRun("ALTER TABLE orders ADD COLUMN gift boolean"); isErr {
		t.Fatalf("dry run: %s", out)
	}
	first := h.apply("OPS-1", "ALTER TABLE orders ADD COLUMN gift boolean")
	if first.Mode != string(review.ModeBranch) || first.Status != string(review.StatusPending) {
		t.Fatalf("apply: mode %q status %q", first.Mode, first.Status)
	}
	second := h.apply("OPS-2", "UPDATE orders SET gift = true WHERE id <= 3")
	if got := second.Report.Statements[0].RowsAffected; got != 3 {
		t.Fatalf("update on the branch affected %d rows, want 3", got)
	}
	res := h.query("SELECT id, gift FROM orders WHERE gift ORDER BY id")
	if res.IsError || !strings.Contains(text(res), `"row_count":3`) {
		t.Fatalf("the session does not see its own work: %s", text(res))
	}
	desc := h.call(scopes.ToolDescribeTable, map[string]any{"table": "orders"})
	if !strings.Contains(text(desc), "gift") {
		t.Fatalf("describe_table does not show the branch's column: %s", text(desc))
	}
	// The dry run now runs on the branch, where the column exists.
	if _, out, isErr := h.dryRun("UPDATE orders SET gift = false WHERE id = 1"); isErr {
		t.Fatalf("dry run on the branch: %s", out)
	}
	if diff := before.Diff(sourceFingerprint(t, h.url)); diff != "" {
		t.Fatalf("the source changed while the agent worked on its branch:\n%s", diff)
	}

	b := branchOf(t, store, first.ChangeID)
	if b2 := branchOf(t, store, second.ChangeID); b2.ID != b.ID {
		t.Fatalf("one session got two branches: %s, %s", b.ID, b2.ID)
	}
	live, err := store.Branches(ctx)
	if err != nil || len(live) != 1 || live[0].Changes != 2 || live[0].SizeBytes <= 0 {
		t.Fatalf("Branches = %+v, %v; want one live branch with 2 changes and a size", live, err)
	}
	diff, err := store.SchemaDiff(ctx, b)
	if err != nil || len(diff) != 1 || !strings.HasPrefix(diff[0], "+ public.orders: column gift boolean") {
		t.Fatalf("SchemaDiff = %q, %v", diff, err)
	}
	// A branch change cannot be committed on its own.
	if _, err := store.Commit(ctx, first.ChangeID, "alice"); err == nil || !strings.Contains(err.Error(), "merge") {
		t.Fatalf("Commit of a branch change: %v", err)
	}

	merged, err := store.Merge(ctx, b.ID, "alice")
	if err != nil {
		t.Fatalf("Merge: %v", err)
	}
	if merged.Branch.Status != review.BranchMerged || len(merged.Changes) != 2 {
		t.Fatalf("merge result: status %q, %d changes", merged.Branch.Status, len(merged.Changes))
	}
	for _, c := range merged.Changes {
		if c.Status != review.StatusCommitted || c.Reviewer != "alice" {
			t.Errorf("change %s: status %q reviewer %q", c.ID, c.Status, c.Reviewer)
		}
	}
	if n := countOrders(t, h, "gift"); n != 3 {
		t.Fatalf("source has %d gift orders after the merge, want 3", n)
	}
	if databaseExists(t, h.pool, b.Database) {
		t.Fatalf("branch database %s still exists after the merge", b.Database)
	}
	// The session's reads go back to the source; it gets no second branch.
	time.Sleep(2100 * time.Millisecond)
	if res := h.query("SELECT count(*) AS n FROM orders WHERE gift"); res.IsError || !strings.Contains(text(res), `"rows":[[3]]`) {
		t.Fatalf("read after the merge: %s", text(res))
	}
	res = h.call(scopes.ToolApplyMigration, map[string]any{"ticket": "OPS-3", "summary": "x", "sql": "UPDATE orders SET gift = false WHERE id = 1"})
	if !res.IsError || !strings.Contains(text(res), "branch_closed") {
		t.Fatalf("apply after the merge: %s", text(res))
	}
	// A second reviewer loses.
	var notLive *review.BranchNotLiveError
	if _, err := store.Merge(ctx, b.ID, "bob"); !errors.As(err, &notLive) || !strings.Contains(err.Error(), "alice") {
		t.Fatalf("second merge: %v", err)
	}
}

// TestBranchTwoSessions: two sessions get two branches (schema strategy,
// built while other connections are open on the source) that do not see
// each other; max_branches refuses a third.
func TestBranchTwoSessions(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	// Someone else is connected to the source throughout.
	other, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)

	mutate := branchScope(review.StrategySchema, 50, 2)
	a := newHarnessOn(t, url, "support.json", mutate)
	b := newHarnessOn(t, url, "support.json", mutate)
	c := newHarnessOn(t, url, "support.json", mutate)
	before := sourceFingerprint(t, url)

	ca := a.apply("OPS-1", "INSERT INTO orders (customer_id, status, total, created_at, notes) VALUES (1, 'paid', 10, now(), 'from-a')")
	cb := b.apply("OPS-2", "INSERT INTO orders (customer_id, status, total, created_at, notes) VALUES (1, 'paid', 10, now(), 'from-b')")
	store := review.NewStore(a.pool, nil)
	ba, bb := branchOf(t, store, ca.ChangeID), branchOf(t, store, cb.ChangeID)
	if ba.ID == bb.ID || ba.Database == bb.Database || ba.Strategy != review.StrategySchema {
		t.Fatalf("two sessions share a branch: %+v %+v", ba, bb)
	}
	for _, tc := range []struct {
		h          *harness
		own, other string
	}{{a, "from-a", "from-b"}, {b, "from-b", "from-a"}} {
		res := tc.h.query("SELECT notes FROM orders WHERE notes IN ('from-a', 'from-b')")
		out := text(res)
		if res.IsError || !strings.Contains(out, tc.own) || strings.Contains(out, tc.other) {
			t.Errorf("session sees %s", out)
		}
	}
	// The schema copy has the sampled rows, and the scope's grants.
	if res := a.query("SELECT count(*) AS n FROM customers"); res.IsError || !strings.Contains(text(res), `"rows":[[50]]`) {
		t.Errorf("sampled customers on the branch: %s", text(res))
	}
	res := c.call(scopes.ToolApplyMigration, map[string]any{"ticket": "OPS-3", "summary": "x",
		"sql": "UPDATE orders SET notes = 'x' WHERE id = 1"})
	if !res.IsError || !strings.Contains(text(res), "too_many_branches") {
		t.Fatalf("third branch past max_branches 2: %s", text(res))
	}
	if diff := before.Diff(sourceFingerprint(t, url)); diff != "" {
		t.Fatalf("the source changed:\n%s", diff)
	}

	// Merge a's branch: exactly its one insert reaches the source.
	if _, err := store.Merge(ctx, ba.ID, "alice"); err != nil {
		t.Fatalf("Merge: %v", err)
	}
	if n := countOrders(t, a, "notes = 'from-a'"); n != 1 {
		t.Fatalf("source has %d from-a orders, want 1", n)
	}
	if n := countOrders(t, a, "notes = 'from-b'"); n != 0 {
		t.Fatalf("source has %d from-b orders, want 0", n)
	}
}

// TestBranchDriftKeepsBranch: when the source changed between the branch
// and the merge so that a statement affects other rows, nothing is
// committed, the branch is kept and the changes are drifted.
func TestBranchDriftKeepsBranch(t *testing.T) {
	h := newHarness(t, "support.json", branchScope(review.StrategyTemplate, 0, 5))
	ctx := context.Background()
	store := review.NewStore(h.pool, nil)
	ch := h.apply("OPS-1", "UPDATE orders SET notes = 'checked' WHERE status = 'refunded'")
	b := branchOf(t, store, ch.ChangeID)
	// Meanwhile on the source: one more refunded order.
	if _, err := h.pool.Exec(ctx, "UPDATE orders SET status = 'refunded' WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	before := sourceFingerprint(t, h.url)
	_, err := store.Merge(ctx, b.ID, "alice")
	var drift *migrate.Drift
	if !errors.As(err, &drift) || !strings.Contains(err.Error(), "rows") {
		t.Fatalf("Merge after drift: %v", err)
	}
	if diff := before.Diff(sourceFingerprint(t, h.url)); diff != "" {
		t.Fatalf("a drifted merge changed the source:\n%s", diff)
	}
	nb, err := store.GetBranch(ctx, b.ID)
	if err != nil || nb.Status != review.BranchLive || !databaseExists(t, h.pool, b.Database) {
		t.Fatalf("branch after drift: %+v, %v (want live and kept)", nb, err)
	}
	c, err := store.Get(ctx, ch.ChangeID)
	if err != nil || c.Status != review.StatusDrifted || !strings.Contains(c.Reason, "statement 1") {
		t.Fatalf("change after drift: %+v, %v", c, err)
	}
}

// TestBranchSchemaDrift: a column added on the source meanwhile makes the
// write tables' schemas differ after the replay: drifted.
func TestBranchSchemaDrift(t *testing.T) {
	h := newHarness(t, "support.json", branchScope(review.StrategyTemplate, 0, 5))
	ctx := context.Background()
	store := review.NewStore(h.pool, nil)
	ch := h.apply("OPS-1", "ALTER TABLE invoices ADD COLUMN paid_at timestamptz")
	b := branchOf(t, store, ch.ChangeID)
	if _, err := h.pool.Exec(ctx, "ALTER TABLE invoices ADD COLUMN memo text"); err != nil {
		t.Fatal(err)
	}
	_, err := store.Merge(ctx, b.ID, "alice")
	if err == nil || !strings.Contains(err.Error(), "memo") {
		t.Fatalf("Merge after schema drift: %v", err)
	}
	var exists bool
	if err := h.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = 'invoices' AND column_name = 'paid_at')").Scan(&exists); err != nil || exists {
		t.Fatalf("a drifted merge added the column: %v %v", exists, err)
	}
}

// TestBranchDiscardAndTTL: discard drops the branch and rolls back its
// changes; serve's reaper drops a branch past its TTL; racing reviewer
// actions have exactly one winner.
func TestBranchDiscardAndTTL(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	mutate := branchScope(review.StrategySchema, 0, 5)
	a := newHarnessOn(t, url, "support.json", mutate)
	b := newHarnessOn(t, url, "support.json", mutate)
	store := review.NewStore(a.pool, nil)
	ca := a.apply("OPS-1", "UPDATE orders SET notes = 'a' WHERE id = 1")
	cb := b.apply("OPS-2", "UPDATE orders SET notes = 'b' WHERE id = 1")
	ba, bb := branchOf(t, store, ca.ChangeID), branchOf(t, store, cb.ChangeID)

	// Discard and merge race on a's branch: exactly one wins.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Add(2)
	go func() { defer wg.Done(); _, errs[0] = store.Discard(ctx, ba.ID, "alice", "not needed") }()
	go func() { defer wg.Done(); _, errs[1] = store.Merge(ctx, ba.ID, "bob") }()
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Fatalf("discard and merge raced: %v / %v; want exactly one winner", errs[0], errs[1])
	}
	if databaseExists(t, a.pool, ba.Database) {
		t.Fatalf("branch database %s survived its decision", ba.Database)
	}
	c, _ := store.Get(ctx, ca.ChangeID)
	if errs[0] == nil && c.Status != review.StatusRolledBack {
		t.Fatalf("discarded branch's change is %s", c.Status)
	}

	// b's branch passes its TTL: the background reaper drops it.
	if _, err := a.pool.Exec(ctx, "UPDATE airlock.branches SET expires_at = now() - interval '1 second' WHERE id = $1", bb.ID); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for databaseExists(t, a.pool, bb.Database) {
		if time.Now().After(deadline) {
			t.Fatal("the reaper did not drop an expired branch")
		}
		time.Sleep(100 * time.Millisecond)
	}
	nb, _ := store.GetBranch(ctx, bb.ID)
	cbNow, _ := store.Get(ctx, cb.ChangeID)
	if nb.Status != review.BranchExpired || cbNow.Status != review.StatusExpired {
		t.Fatalf("after TTL: branch %s, change %s", nb.Status, cbNow.Status)
	}
}

// TestBranchTemplateSourceInUse: the template strategy cannot copy a
// source someone else is connected to; the agent is told why and what to
// do.
func TestBranchTemplateSourceInUse(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	other, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	h := newHarnessOn(t, url, "support.json", branchScope(review.StrategyTemplate, 0, 5))
	res := h.call(scopes.ToolApplyMigration, map[string]any{"ticket": "OPS-1", "summary": "x", "sql": "UPDATE orders SET notes = 'x' WHERE id = 1"})
	out := text(res)
	if !res.IsError || !strings.Contains(out, "branch_unavailable") || !strings.Contains(out, "connected") || !strings.Contains(out, `"schema"`) {
		t.Fatalf("template branch with the source in use: %s", out)
	}
	live, err := review.NewStore(h.pool, nil).Branches(ctx)
	if err != nil || len(live) != 0 {
		t.Fatalf("a failed branch stays registered: %+v %v", live, err)
	}
}

// TestBranchCreateTableAndRows: on its branch the agent creates a table,
// inserts rows and reads them back through query_readonly, while the
// source database stays identical until a reviewer merges.
func TestBranchCreateTableAndRows(t *testing.T) {
	h := newHarness(t, "support.json", func(s *scopes.Scope) {
		branchScope("schema", 10, 5)(s)
		s.Read.Tables["public.orders_archive"] = scopes.TableRule{}
	})
	before := sourceFingerprint(t, h.url)
	h.apply("OPS-21", "CREATE TABLE public.orders_archive (id bigint PRIMARY KEY, note text)")
	h.apply("OPS-22", "INSERT INTO orders_archive (id, note) VALUES (1, 'first'), (2, 'second')")
	out := h.mustQuery("SELECT id, note FROM orders_archive ORDER BY id")
	if out.RowCount != 2 || string(out.Rows[1][1]) != `"second"` {
		t.Fatalf("branch rows: %+v", out.Rows)
	}
	if d := before.Diff(sourceFingerprint(t, h.url)); d != "" {
		t.Fatalf("the source changed before any merge:\n%s", d)
	}
	var exists bool
	h.pool.QueryRow(context.Background(), "SELECT to_regclass('public.orders_archive') IS NOT NULL").Scan(&exists)
	if exists {
		t.Fatal("the new table reached the source")
	}
}
