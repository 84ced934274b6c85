package review

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/airlock-dev/airlock/migrate"
	"github.com/airlock-dev/airlock/scopes"
	"github.com/airlock-dev/airlock/sqlguard"
)

// Capture, the recording half of undo (docs/architecture.md, Undo): the
// scope's undo settings, and what a commit records of the rows it changed.

// undoSettings reads write.undo of scope as the admin applied it.
func undoSettings(ctx context.Context, q querier, scope string) (*scopes.Undo, error) {
	sc, _, err := appliedScope(ctx, q, scope)
	if err != nil {
		return nil, err
	}
	if sc.Write == nil || !sc.Write.Undo.On() {
		return nil, nil
	}
	return sc.Write.Undo, nil
}

// writeTables are the write tables of scope as applied now: a commit's
// foreign key actions may change no other (migrate.Options.WriteTables).
func writeTables(ctx context.Context, q querier, scope string) ([]string, error) {
	sc, _, err := appliedScope(ctx, q, scope)
	if err != nil {
		return nil, err
	}
	if sc.Write == nil {
		return []string{}, nil
	}
	return slices.Clone(sc.Write.Tables), nil
}

// captureIrreversible says why a change, once committed, cannot be
// reverted, or "".
func captureIrreversible(c *Change) string {
	for i := range c.Statements {
		if why := migrate.IrreversibleReason(&c.Statements[i]); why != "" {
			return fmt.Sprintf("statement %d: %s", i+1, why)
		}
	}
	return ""
}

// recordCapture is part of a commit's BeforeCommit: the capture exists
// exactly when the change does.
func recordCapture(ctx context.Context, tx pgx.Tx, c *Change, undo *scopes.Undo, log *migrate.UndoLog) error {
	var why any
	if s := captureIrreversible(c); s != "" {
		why = s
	} else if log != nil && log.Irreversible[c.ID] != "" {
		why = log.Irreversible[c.ID]
	}
	var trash []migrate.TrashEntry
	if log != nil {
		for _, e := range log.Trash {
			if e.Change == c.ID {
				trash = append(trash, e)
			}
		}
	}
	var trashJSON any
	if len(trash) > 0 {
		b, err := json.Marshal(trash)
		if err != nil {
			return fmt.Errorf("record the capture for undo: %w", err)
		}
		trashJSON = string(b)
	}
	_, err := tx.Exec(ctx, `INSERT INTO airlock.undo_captures (change_id, scope, expires_at, irreversible, trash)
		VALUES ($1, $2, now() + $3::interval, $4, $5::jsonb)`, c.ID, c.Scope, undo.Retention, why, trashJSON)
	if err != nil {
		return fmt.Errorf("record the capture for undo: %w", err)
	}
	return nil
}

// lastRowStatements returns, for migrate.InverseOf, the last statement
// of change id that changed rows of a table (-1 for none).
func lastRowStatements(ctx context.Context, q querier, id string) (func(schema, table string) int, error) {
	rels, err := capturedRelations(ctx, q, id)
	if err != nil {
		return nil, err
	}
	last := map[[2]string]int{}
	for _, r := range rels {
		last[[2]string{r.schema, r.table}] = r.lastStmt
	}
	return func(schema, table string) int {
		if n, ok := last[[2]string{schema, table}]; ok {
			return n
		}
		return -1
	}, nil
}

// capturedRelation is a table change id captured rows of: its name as
// undo_rows holds it (quote_ident form), its parts, and the last
// statement that changed it.
type capturedRelation struct {
	relation, schema, table string
	lastStmt                int
}

// capturedRelations lists the tables change id captured rows of, in
// capture order.
func capturedRelations(ctx context.Context, q querier, id string) ([]capturedRelation, error) {
	rows, err := q.Query(ctx, `SELECT relation, (pg_catalog.parse_ident(relation))[1], (pg_catalog.parse_ident(relation))[2], max(stmt)
		FROM airlock.undo_rows WHERE change_id = $1 GROUP BY relation ORDER BY min(seq)`, id)
	if err != nil {
		return nil, fmt.Errorf("read the capture: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (capturedRelation, error) {
		var r capturedRelation
		err := row.Scan(&r.relation, &r.schema, &r.table, &r.lastStmt)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("read the capture: %w", err)
	}
	return out, nil
}

// decodeTrash reads undo_captures.trash (NULL when nothing was trashed).
func decodeTrash(b []byte) ([]migrate.TrashEntry, error) {
	if b == nil {
		return nil, nil
	}
	var out []migrate.TrashEntry
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("decode the trash entries: %w", err)
	}
	return out, nil
}

// PreparedCapture is a prepared apply's BeforeCommit hook with undo on:
// it records the capture inside the prepared transaction, so it commits
// (COMMIT PREPARED) or vanishes (ROLLBACK PREPARED) with the change; the
// retention counts from the apply, so it adds the review's TTL. The run
// must be given the UndoLog (RunArg.Undo) it returns.
func PreparedCapture(id, scope string, statements []sqlguard.MigrationStatement, ttl time.Duration, undo *scopes.Undo) (func(context.Context, pgx.Tx) error, *migrate.UndoLog) {
	log := &migrate.UndoLog{}
	return func(ctx context.Context, tx pgx.Tx) error {
		c := &Change{ID: id, Scope: scope, Statements: statements}
		return recordCapture(ctx, tx, c, &scopes.Undo{Retention: ttl + undo.Retention}, log)
	}, log
}

// purgeUndo deletes the captures past their retention.
func (s *Store) purgeUndo(ctx context.Context) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, "SELECT airlock.purge_undo()").Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("purge expired undo captures: %w", err)
	}
	return n, nil
}
