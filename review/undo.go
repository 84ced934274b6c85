package review

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/airlock-dev/airlock/migrate"
)

// Undo (docs/architecture.md, Undo). A replay commit of a scope with
// write.undo on runs with migrate.Options.Capture: the write tables'
// triggers record, in the commit's own transaction, the before and after
// image of every row each statement touched (airlock.undo_rows), and the
// commit records the capture (airlock.undo_captures) with its expiry.
// airlock revert turns that into a new pending change, a RevertPlan,
// which a reviewer commits like any other: under the change's lock it
// checks again that every row is still as the original change left it,
// restores the rows as the write role (bound parameters, never text), and
// drops what the change added (tables, columns, indexes).

// RevertPlan is what a revert does, as recorded with it and shown to the
// reviewer. The images themselves stay in airlock.undo_rows.
type RevertPlan struct {
	// Change is the committed change it reverts.
	Change string `json:"change"`
	// OnlyUnchanged leaves out the rows changed since the original commit
	// (Skipped) instead of refusing.
	OnlyUnchanged bool          `json:"only_unchanged,omitempty"`
	Tables        []RevertTable `json:"tables"`
	// Recreate are the statements that bring back what the change dropped
	// (from the trash) or renamed, run before the rows are restored.
	Recreate []string `json:"recreate,omitempty"`
	// DDL are the statements that undo what the change added, in order,
	// run after.
	DDL []string `json:"ddl,omitempty"`
}

// RevertTable is what a revert does to one table: rows put back
// (deleted by the change), restored (updated by it) and removed
// (inserted by it).
type RevertTable struct {
	Relation string `json:"relation"`
	PutBack  int64  `json:"put_back"`
	Restored int64  `json:"restored"`
	Removed  int64  `json:"removed"`
	// Skipped are the keys (as JSON) of rows changed since the original
	// commit, left as they are.
	Skipped []string `json:"skipped,omitempty"`
}

// RevertConflictError refuses a revert that would overwrite rows others
// changed since the original commit.
type RevertConflictError struct {
	Change string
	// Keys are, per table, the conflicting rows' keys (as JSON), at most
	// maxConflictKeys each.
	Keys  map[string][]string
	Count int
}

const maxConflictKeys = 20

func (e *RevertConflictError) Error() string {
	var parts []string
	rels := mapsKeys(e.Keys)
	slices.Sort(rels)
	for _, rel := range rels {
		parts = append(parts, rel+" "+strings.Join(e.Keys[rel], ", "))
	}
	return fmt.Sprintf("change %s: %d row(s) changed since it was committed, and a revert would overwrite them: %s; "+
		"revert with --only-unchanged to restore only the rows nobody changed since", e.Change, e.Count, strings.Join(parts, "; "))
}

func mapsKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// NotRevertibleError says why a change cannot be reverted.
type NotRevertibleError struct{ Change, Reason string }

func (e *NotRevertibleError) Error() string {
	return fmt.Sprintf("change %s cannot be reverted: %s", e.Change, e.Reason)
}

// Revertibility is what show says about reverting a committed change.
type Revertibility struct {
	Captured     bool
	Until        time.Time
	Purged       bool
	Irreversible string
	// Rows counts the captured images per table: before (rows as they
	// were) and after (as the change left them).
	Rows map[string][2]int64
	// DDL are the statements a revert would run to undo what it added.
	DDL []string
}

// Revertibility reports whether committed change id can be reverted.
func (s *Store) Revertibility(ctx context.Context, id string) (*Revertibility, error) {
	c, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	r := &Revertibility{Rows: map[string][2]int64{}}
	var (
		why    *string
		purged *time.Time
	)
	var trashJSON []byte
	err = s.pool.QueryRow(ctx, "SELECT expires_at, irreversible, purged_at, trash FROM airlock.undo_captures WHERE change_id = $1", c.ID).
		Scan(&r.Until, &why, &purged, &trashJSON)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the capture of %s: %w", id, err)
	}
	r.Captured, r.Purged = true, purged != nil || !time.Now().Before(r.Until)
	if why != nil {
		r.Irreversible = *why
	}
	rows, err := s.pool.Query(ctx, `SELECT relation, count(*) FILTER (WHERE side = 'b'), count(*) FILTER (WHERE side = 'a')
		FROM airlock.undo_rows WHERE change_id = $1 GROUP BY relation ORDER BY relation`, c.ID)
	if err != nil {
		return nil, fmt.Errorf("read the capture of %s: %w", id, err)
	}
	for rows.Next() {
		var rel string
		var b, a int64
		if err := rows.Scan(&rel, &b, &a); err != nil {
			rows.Close()
			return nil, err
		}
		r.Rows[rel] = [2]int64{b, a}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	trash, err := decodeTrash(trashJSON)
	if err != nil {
		return nil, fmt.Errorf("read the capture of %s: %w", id, err)
	}
	last, err := lastRowStatements(ctx, s.pool, c.ID)
	if err != nil {
		return nil, err
	}
	if inv, err := migrate.InverseOf(c.Effects.SchemaDiff, trash, last); err == nil {
		r.DDL = append(inv.Recreate, inv.Drop...)
	} else if r.Irreversible == "" {
		r.Irreversible = err.Error()
	}
	return r, nil
}
