package migrate

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/airlock-dev/airlock/sqlguard"
)

// cascadeWatch notices what statement i changes through foreign key
// actions (ON DELETE or ON UPDATE CASCADE, SET NULL, SET DEFAULT), which
// PostgreSQL runs with the referencing table owner's rights, whatever the
// write role may do. The catalog says which tables an action could reach;
// the transaction's own statistics (pg_stat_xact_user_tables, which count
// the rows the actions' statements touch) say whether it did. A reached
// table outside Options.WriteTables fails the statement (*CascadeError):
// the scope's write tables are all an approved change may change. Under
// undo, a reached table without capture triggers makes the statement
// irreversible (UN101; where airlock's schema is absent, as on a branch,
// nothing is captured and nothing is said).
type cascadeWatch struct {
	tables map[uint32]*cascadeTarget
	before map[uint32]int64
}

type cascadeTarget struct {
	name               string // quote_ident form, for reviewers
	qualified          string // schema.table, as scopes name tables
	captured, airlocks bool
}

func (r *runner) watchCascades(ctx context.Context, i int, st *sqlguard.MigrationStatement) (*cascadeWatch, error) {
	if !r.opt.Undo && r.opt.WriteTables == nil {
		return nil, nil
	}
	var del, upd bool
	for _, k := range append([]string{st.Kind}, st.Kinds...) {
		del = del || k == "delete"
		upd = upd || k == "update"
	}
	if !del && !upd {
		return nil, nil
	}
	rows, err := r.tx.Query(ctx, `SELECT DISTINCT t.oid, pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(t.relname),
	n.nspname || '.' || t.relname,
	EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g WHERE g.tgrelid = c.conrelid AND g.tgname IN ('airlock_capture_del', 'airlock_capture_upd')),
	EXISTS (SELECT 1 FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace
		WHERE pn.nspname = 'airlock' AND p.proname = 'capture_rows')
FROM pg_catalog.pg_constraint c JOIN pg_catalog.pg_class t ON t.oid = c.conrelid JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
WHERE c.contype = 'f' AND c.confrelid = ANY (SELECT pg_catalog.to_regclass(x) FROM pg_catalog.unnest($1::text[]) x)
	AND (($2 AND c.confdeltype IN ('c', 'n', 'd')) OR ($3 AND c.confupdtype IN ('c', 'n', 'd')))`, st.Targets, del, upd)
	if err != nil {
		return nil, fmt.Errorf("read the foreign keys that act on statement %d's tables: %w", i+1, err)
	}
	w := &cascadeWatch{tables: map[uint32]*cascadeTarget{}}
	for rows.Next() {
		var oid uint32
		var t cascadeTarget
		if err := rows.Scan(&oid, &t.name, &t.qualified, &t.captured, &t.airlocks); err != nil {
			rows.Close()
			return nil, err
		}
		w.tables[oid] = &t
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the foreign keys that act on statement %d's tables: %w", i+1, err)
	}
	if len(w.tables) == 0 {
		return nil, nil
	}
	if w.before, err = w.counts(ctx, r.tx); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *cascadeWatch) counts(ctx context.Context, tx pgx.Tx) (map[uint32]int64, error) {
	oids := make([]uint32, 0, len(w.tables))
	for oid := range w.tables {
		oids = append(oids, oid)
	}
	rows, err := tx.Query(ctx, "SELECT relid, n_tup_upd + n_tup_del FROM pg_catalog.pg_stat_xact_user_tables WHERE relid = ANY ($1::oid[])", oids)
	if err != nil {
		return nil, fmt.Errorf("read the transaction's row counts: %w", err)
	}
	out := map[uint32]int64{}
	for rows.Next() {
		var oid uint32
		var n int64
		if err := rows.Scan(&oid, &n); err != nil {
			rows.Close()
			return nil, err
		}
		out[oid] = n
	}
	rows.Close()
	return out, rows.Err()
}

// check runs after statement i: a table whose counts grew was reached.
func (w *cascadeWatch) check(ctx context.Context, r *runner, i int) error {
	if w == nil {
		return nil
	}
	after, err := w.counts(ctx, r.tx)
	if err != nil {
		return err
	}
	var outside []string
	uncaptured := false
	for oid, n := range after {
		t := w.tables[oid]
		if n <= w.before[oid] {
			continue
		}
		if r.opt.WriteTables != nil && !slices.Contains(r.opt.WriteTables, t.qualified) {
			outside = append(outside, t.name)
		}
		uncaptured = uncaptured || (t.airlocks && !t.captured)
	}
	if len(outside) > 0 {
		slices.Sort(outside)
		return &CascadeError{Index: i, Tables: outside}
	}
	if uncaptured && r.opt.Undo && r.trashBlocked[i] == "" {
		if r.trashBlocked == nil {
			r.trashBlocked = map[int]string{}
		}
		r.trashBlocked[i] = "a foreign key's ON DELETE or ON UPDATE action changed rows of a table airlock does not capture"
	}
	return nil
}
