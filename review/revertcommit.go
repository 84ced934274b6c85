package review

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/airlock-dev/airlock/migrate"
)

// commitRevert commits revert change id: under the change's lock it plans
// the revert again, which must come out as recorded (anything else is a
// drift), restores the rows and runs the inverse DDL as the write role,
// captures what it did (a revert can be reverted) and marks it committed,
// all in one transaction.
func (s *Store) commitRevert(ctx context.Context, id, reviewer string) (*Change, error) {
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("commit change %s: %w", id, err)
	}
	defer pc.Release()
	unlock, err := lockChange(ctx, pc.Conn(), id)
	if err != nil {
		return nil, fmt.Errorf("commit change %s: %w", id, err)
	}
	defer unlock()
	r, err := s.get(ctx, pc, id)
	if err != nil {
		return nil, err
	}
	if r.Status != StatusPending || r.overdue {
		return s.settled(ctx, id, actionCommit)
	}
	orig, err := s.get(ctx, pc, r.Reverts)
	if err != nil {
		return r.Change, err
	}
	if err := s.revertible(ctx, orig.Change); err != nil {
		return r.Change, err
	}
	var drift *migrate.Drift
	err = pgx.BeginFunc(ctx, pc.Conn(), func(tx pgx.Tx) error {
		role, err := writeRole(ctx, tx, orig.Scope)
		if err != nil {
			return err
		}
		orig.Options.Role = role
		plan, tables, err := planRevert(ctx, tx, orig.Change, r.Revert.OnlyUnchanged)
		var conflict *RevertConflictError
		if errors.As(err, &conflict) {
			drift = &migrate.Drift{Differences: []string{conflict.Error()}}
			return drift
		}
		if err != nil {
			return err
		}
		if d := planDiff(r.Revert, plan); d != "" {
			drift = &migrate.Drift{Differences: []string{d}}
			return drift
		}
		undo, err := undoSettings(ctx, tx, r.Scope)
		if err != nil {
			return err
		}
		if undo != nil {
			if _, err := tx.Exec(ctx, "SELECT pg_catalog.set_config('airlock.capture', $1, true)", r.ID); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, "SET LOCAL ROLE "+pgx.Identifier{role}.Sanitize()); err != nil {
			return fmt.Errorf("assume the write role: %w", err)
		}
		for _, d := range plan.Recreate {
			if _, err := tx.Exec(ctx, d); err != nil {
				return fmt.Errorf("%s: %w", d, err)
			}
		}
		if err := restoreRows(ctx, tx, tables); err != nil {
			return err
		}
		for _, d := range plan.DDL {
			if _, err := tx.Exec(ctx, d); err != nil {
				return fmt.Errorf("%s: %w", d, err)
			}
		}
		if err := markCommitted(id, reviewer, true)(ctx, tx); err != nil {
			return err
		}
		if undo != nil {
			return recordCapture(ctx, tx, r.Change, undo, nil)
		}
		return nil
	})
	if drift != nil {
		return s.markDrifted(ctx, r.Change, reviewer, drift)
	}
	if err != nil {
		return r.Change, fmt.Errorf("commit revert %s: %w; nothing was committed and the revert is still pending", id, err)
	}
	return s.Get(ctx, id)
}

// planDiff says how a revert planned now differs from the recorded one.
func planDiff(want, got *RevertPlan) string {
	a, _ := json.Marshal(want)
	b, _ := json.Marshal(got)
	if string(a) == string(b) {
		return ""
	}
	return fmt.Sprintf("the revert planned now (%s) is not the one recorded (%s): rows changed since", b, a)
}

// restoreRows puts every table's rows back as they were before the
// change: the images are bound parameters, rebuilt into rows by
// jsonb_populate_recordset, never SQL text. Deletes go first, then
// updates, then inserts.
func restoreRows(ctx context.Context, tx pgx.Tx, tables []*tableChanges) error {
	for pass := 0; pass < 3; pass++ {
		for i := range tables {
			t := tables[i]
			if pass == 2 {
				t = tables[len(tables)-1-i]
			}
			if err := restorePass(ctx, tx, t, pass); err != nil {
				return err
			}
		}
	}
	return nil
}

func restorePass(ctx context.Context, tx pgx.Tx, t *tableChanges, pass int) error {
	var imgs []json.RawMessage
	for _, rc := range t.rows {
		switch {
		case pass == 0 && rc.before == nil:
			imgs = append(imgs, rc.key)
		case pass == 1 && rc.before != nil && rc.after != nil, pass == 2 && rc.before != nil && rc.after == nil:
			imgs = append(imgs, rc.before)
		}
	}
	if len(imgs) == 0 {
		return nil
	}
	arg := jsonArray(len(imgs), func(b *bytes.Buffer, i int) { b.Write(imgs[i]) })
	on := make([]string, len(t.key))
	for i, k := range t.key {
		id := pgx.Identifier{k}.Sanitize()
		on[i] = "t." + id + " = r." + id
	}
	var sql string
	switch pass {
	case 0:
		sql = "DELETE FROM " + t.relation + " t USING jsonb_populate_recordset(NULL::" + t.relation + ", $1::jsonb) r WHERE " + strings.Join(on, " AND ")
	default:
		cols, err := writableColumns(ctx, tx, t.relation, t.columns, pass == 1)
		if err != nil {
			return err
		}
		if len(cols) == 0 {
			return nil
		}
		if pass == 1 {
			set := make([]string, len(cols))
			for i, c := range cols {
				set[i] = c + " = r." + c
			}
			sql = "UPDATE " + t.relation + " t SET " + strings.Join(set, ", ") + " FROM jsonb_populate_recordset(NULL::" + t.relation + ", $1::jsonb) r WHERE " + strings.Join(on, " AND ")
		} else {
			sql = "INSERT INTO " + t.relation + " (" + strings.Join(cols, ", ") + ") OVERRIDING SYSTEM VALUE SELECT " +
				strings.Join(cols, ", ") + " FROM jsonb_populate_recordset(NULL::" + t.relation + ", $1::jsonb)"
		}
	}
	tag, err := tx.Exec(ctx, sql, arg)
	if err != nil {
		return fmt.Errorf("restore %s: %w", t.relation, err)
	}
	if tag.RowsAffected() != int64(len(imgs)) {
		return fmt.Errorf("restore %s: %d row(s) restored, %d planned", t.relation, tag.RowsAffected(), len(imgs))
	}
	return nil
}

// writableColumns returns, quoted, rel's columns among want that a
// restore may write: not generated, and for an update not an identity
// column generated always.
func writableColumns(ctx context.Context, tx pgx.Tx, rel string, want map[string]bool, update bool) ([]string, error) {
	rows, err := tx.Query(ctx, `SELECT attname, attgenerated <> '' OR (attidentity = 'a' AND $2)
		FROM pg_catalog.pg_attribute WHERE attrelid = pg_catalog.to_regclass($1) AND attnum > 0 AND NOT attisdropped ORDER BY attnum`, rel, update)
	if err != nil {
		return nil, fmt.Errorf("read the columns of %s: %w", rel, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		var skip bool
		if err := rows.Scan(&name, &skip); err != nil {
			return nil, err
		}
		if want[name] && !skip {
			out = append(out, pgx.Identifier{name}.Sanitize())
		}
	}
	return out, rows.Err()
}
