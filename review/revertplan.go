package review

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/airlock-dev/airlock/audit"
	"github.com/airlock-dev/airlock/migrate"
	"github.com/airlock-dev/airlock/scopes"
	"github.com/airlock-dev/airlock/sqlguard"
)

// Planning a revert: the captured rows read back, checked against the
// tables as they are now, and recorded as a pending change.

// rowChange is one key's net change: the row before the change (nil when
// the change inserted it) and after it (nil when it deleted it).
type rowChange struct {
	key           json.RawMessage
	before, after json.RawMessage
}

// tableChanges are the net row changes of one table, with its key
// columns and the columns its before images hold. relation is the table's
// name when captured, where rows are restored (after the revert brought
// back what the change dropped); current is where it is now (in
// airlock_trash for a dropped table), where rows are compared.
type tableChanges struct {
	relation string
	current  string
	key      []string
	columns  map[string]bool
	rows     []*rowChange
}

// loadCapture reads change id's captured rows into net changes per table:
// per key the first image (a before image, unless the change inserted the
// row) and the last (an after image, unless it deleted it). PostgreSQL
// does the JSON work: keys are jsonb text, whose output is canonical
// (one spelling per value, keys sorted), so equal keys and equal images
// are equal strings; a row the change left exactly as it was (compared
// as text, so 0.1 and 0.10 differ) is no change.
func loadCapture(ctx context.Context, tx pgx.Tx, id string, trash []migrate.TrashEntry) ([]*tableChanges, error) {
	rels, err := capturedRelations(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	var out []*tableChanges
	for _, cr := range rels {
		rel, current := cr.relation, cr.relation
		for _, e := range trash {
			if e.Kind == "table" && e.Schema == cr.schema && e.Table == cr.table {
				current = pgx.Identifier{migrate.TrashSchema, e.Trash}.Sanitize()
			}
		}
		key, err := migrate.KeyColumns(ctx, tx, current)
		if err != nil {
			return nil, err
		}
		t := &tableChanges{relation: rel, current: current, key: key, columns: map[string]bool{}}
		parts := make([]string, len(key))
		for i := range key {
			parts[i] = fmt.Sprintf("$%d::text, image->$%[1]d::text", i+3)
		}
		args := []any{id, rel}
		for _, k := range key {
			args = append(args, k)
		}
		rows, err := tx.Query(ctx, `WITH r AS MATERIALIZED (
	SELECT seq, side, image, jsonb_build_object(`+strings.Join(parts, ", ")+`)::text AS k
	FROM airlock.undo_rows WHERE change_id = $1 AND relation = $2
), g AS (SELECT k, min(seq) AS fs, max(seq) AS ls FROM r GROUP BY k)
SELECT g.k, CASE WHEN f.side = 'b' THEN f.image::text END, CASE WHEN l.side = 'a' THEN l.image::text END
FROM g JOIN r f ON f.seq = g.fs JOIN r l ON l.seq = g.ls
WHERE NOT (f.side = 'b' AND l.side = 'a' AND f.image::text = l.image::text)
ORDER BY g.fs`, args...)
		if err != nil {
			return nil, fmt.Errorf("read the capture of %s: %w", rel, err)
		}
		for rows.Next() {
			var k string
			var before, after *string
			if err := rows.Scan(&k, &before, &after); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read the capture of %s: %w", rel, err)
			}
			rc := &rowChange{key: json.RawMessage(k)}
			if before != nil {
				rc.before = json.RawMessage(*before)
			}
			if after != nil {
				rc.after = json.RawMessage(*after)
			}
			t.rows = append(t.rows, rc)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read the capture of %s: %w", rel, err)
		}
		cols, err := tx.Query(ctx, "SELECT DISTINCT jsonb_object_keys(image) FROM airlock.undo_rows WHERE change_id = $1 AND relation = $2 AND side = 'b'", id, rel)
		if err != nil {
			return nil, fmt.Errorf("read the capture of %s: %w", rel, err)
		}
		names, err := pgx.CollectRows(cols, pgx.RowTo[string])
		if err != nil {
			return nil, fmt.Errorf("read the capture of %s: %w", rel, err)
		}
		for _, c := range names {
			t.columns[c] = true
		}
		if len(t.rows) > 0 {
			out = append(out, t)
		}
	}
	return out, nil
}

// jsonArray joins JSON values PostgreSQL wrote into one array, without
// decoding and encoding them again.
func jsonArray(n int, item func(*bytes.Buffer, int)) []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		item(&b, i)
	}
	b.WriteByte(']')
	return b.Bytes()
}

// conflicts returns the keys of t's rows that are no longer as the change
// left them. A row equal to its after image as a whole is settled by one
// jsonb comparison; only the others are compared column by column, so a
// column added since the change does not count as a conflict.
func conflicts(ctx context.Context, tx pgx.Tx, t *tableChanges) (map[string]bool, error) {
	arg := jsonArray(len(t.rows), func(b *bytes.Buffer, i int) {
		rc := t.rows[i]
		b.WriteString(`{"k":`)
		b.Write(rc.key)
		b.WriteString(`,"a":`)
		if rc.after == nil {
			b.WriteString("null")
		} else {
			b.Write(rc.after)
		}
		b.WriteByte('}')
	})
	// Every reference is qualified by an alias no table column can take
	// the place of: a write table may have columns named t, x or value.
	on := make([]string, len(t.key))
	for i, k := range t.key {
		id := pgx.Identifier{k}.Sanitize()
		on[i] = "airlock_cur." + id + " = airlock_key." + id
	}
	first := "airlock_cur." + pgx.Identifier{t.key[0]}.Sanitize()
	sql := `SELECT airlock_in.e->'k' FROM jsonb_array_elements($1::jsonb) AS airlock_in(e)
CROSS JOIN LATERAL jsonb_populate_record(NULL::` + t.current + `, airlock_in.e->'k') AS airlock_key
LEFT JOIN ` + t.current + ` AS airlock_cur ON ` + strings.Join(on, " AND ") + `
WHERE CASE WHEN jsonb_typeof(airlock_in.e->'a') = 'null' THEN ` + first + ` IS NOT NULL
	WHEN ` + first + ` IS NULL THEN true
	WHEN to_jsonb(airlock_cur.*) = airlock_in.e->'a' THEN false
	ELSE EXISTS (SELECT 1 FROM jsonb_each(airlock_in.e->'a') AS airlock_kv(key, value)
		WHERE to_jsonb(airlock_cur.*) ? airlock_kv.key AND to_jsonb(airlock_cur.*)->airlock_kv.key IS DISTINCT FROM airlock_kv.value) END`
	rows, err := tx.Query(ctx, sql, arg)
	if err != nil {
		return nil, fmt.Errorf("compare %s with the capture: %w", t.current, err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("compare %s with the capture: %w", t.current, err)
	}
	out := make(map[string]bool, len(keys))
	for _, k := range keys {
		out[k] = true
	}
	return out, nil
}

// planRevert computes the revert of committed change c inside tx, as
// the write role: per table what it restores, the rows in conflict and
// the inverse DDL.
func planRevert(ctx context.Context, tx pgx.Tx, c *Change, onlyUnchanged bool) (*RevertPlan, []*tableChanges, error) {
	var trashJSON []byte
	if err := tx.QueryRow(ctx, "SELECT trash FROM airlock.undo_captures WHERE change_id = $1", c.ID).Scan(&trashJSON); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, fmt.Errorf("read the capture: %w", err)
	}
	trash, err := decodeTrash(trashJSON)
	if err != nil {
		return nil, nil, fmt.Errorf("read the capture: %w", err)
	}
	last, err := lastRowStatements(ctx, tx, c.ID)
	if err != nil {
		return nil, nil, err
	}
	inv, err := migrate.InverseOf(c.Effects.SchemaDiff, trash, last)
	if err != nil {
		return nil, nil, &NotRevertibleError{Change: c.ID, Reason: err.Error()}
	}
	// Everything here names its objects qualified; pg_catalog alone
	// keeps an operator or function of a user schema out of the way.
	if _, err := tx.Exec(ctx, "SET LOCAL search_path = pg_catalog"); err != nil {
		return nil, nil, fmt.Errorf("pin the search path: %w", err)
	}
	tables, err := loadCapture(ctx, tx, c.ID, trash)
	if err != nil {
		return nil, nil, err
	}
	if _, err := tx.Exec(ctx, "SET LOCAL ROLE "+pgx.Identifier{c.Options.Role}.Sanitize()); err != nil {
		return nil, nil, fmt.Errorf("assume the write role: %w", err)
	}
	plan := &RevertPlan{Change: c.ID, OnlyUnchanged: onlyUnchanged, Tables: []RevertTable{}, Recreate: inv.Recreate, DDL: inv.Drop}
	conflict := &RevertConflictError{Change: c.ID, Keys: map[string][]string{}}
	for _, t := range tables {
		bad, err := conflicts(ctx, tx, t)
		if err != nil {
			return nil, nil, err
		}
		rt := RevertTable{Relation: t.relation}
		kept := t.rows[:0]
		for _, rc := range t.rows {
			if bad[string(rc.key)] {
				conflict.Count++
				if len(conflict.Keys[t.relation]) < maxConflictKeys {
					conflict.Keys[t.relation] = append(conflict.Keys[t.relation], string(rc.key))
				}
				rt.Skipped = append(rt.Skipped, string(rc.key))
				continue
			}
			kept = append(kept, rc)
			switch {
			case rc.before == nil:
				rt.Removed++
			case rc.after == nil:
				rt.PutBack++
			default:
				rt.Restored++
			}
		}
		t.rows = kept
		plan.Tables = append(plan.Tables, rt)
	}
	if conflict.Count > 0 && !onlyUnchanged {
		return nil, nil, conflict
	}
	if _, err := tx.Exec(ctx, "SET LOCAL ROLE NONE"); err != nil {
		return nil, nil, fmt.Errorf("reset role: %w", err)
	}
	return plan, tables, nil
}

// Revert records a pending change that undoes committed change id, on
// behalf of reviewer: a human commits it like any other change. Rows
// changed since the original commit refuse the revert with their keys
// (*RevertConflictError), or with onlyUnchanged are left out.
func (s *Store) Revert(ctx context.Context, id, reviewer string, onlyUnchanged bool) (*Change, error) {
	reviewer = strings.TrimSpace(reviewer)
	if reviewer == "" {
		return nil, errors.New("revert: a reviewer name is required")
	}
	orig, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.revertible(ctx, orig); err != nil {
		return nil, err
	}
	var rev *Change
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		role, err := writeRole(ctx, tx, orig.Scope)
		if err != nil {
			return err
		}
		orig.Options.Role = role
		plan, _, err := planRevert(ctx, tx, orig, onlyUnchanged)
		if err != nil {
			return err
		}
		ttl := scopes.DefaultReviewTTL
		if sc, _, err := appliedScope(ctx, tx, orig.Scope); err == nil && sc.Write != nil {
			ttl = sc.Write.ReviewTTL
		}
		rev = revertChange(orig, plan, reviewer, ttl)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := s.Record(ctx, rev); err != nil {
		return nil, err
	}
	s.record(rev, rev.ID, reviewer, "revert", audit.Reviewed, "reverts change "+orig.ID, 0, 0)
	return rev, nil
}

// revertible checks that c is a committed change with a live capture.
func (s *Store) revertible(ctx context.Context, c *Change) error {
	if c.Status != StatusCommitted {
		return &NotRevertibleError{Change: c.ID, Reason: "it is " + string(c.Status) + ", not committed"}
	}
	r, err := s.Revertibility(ctx, c.ID)
	if err != nil {
		return err
	}
	switch {
	case !r.Captured:
		return &NotRevertibleError{Change: c.ID, Reason: "nothing was captured when it was committed (write.undo was off, or an airlock older than undo committed it)"}
	case r.Purged:
		return &NotRevertibleError{Change: c.ID, Reason: "its capture expired on " + r.Until.UTC().Format(time.RFC3339) + " and was purged"}
	case r.Irreversible != "":
		return &NotRevertibleError{Change: c.ID, Reason: r.Irreversible}
	}
	return nil
}

// revertChange is the pending change a revert plan becomes.
func revertChange(orig *Change, plan *RevertPlan, reviewer string, ttl time.Duration) *Change {
	var sql strings.Builder
	fmt.Fprintf(&sql, "-- airlock revert of change %s (ticket %s), asked by %s\n", orig.ID, orig.Ticket, reviewer)
	var effects migrate.Effects
	for _, t := range plan.Tables {
		fmt.Fprintf(&sql, "-- %s: put back %d deleted row(s), restore %d updated row(s), remove %d inserted row(s)", t.Relation, t.PutBack, t.Restored, t.Removed)
		if len(t.Skipped) > 0 {
			fmt.Fprintf(&sql, "; %d row(s) changed since are left as they are", len(t.Skipped))
		}
		sql.WriteString("\n")
		effects.RowsAffected = append(effects.RowsAffected, t.PutBack+t.Restored+t.Removed)
	}
	for _, d := range plan.DDL {
		sql.WriteString(d + ";\n")
	}
	risk := migrate.RiskModerate
	if len(plan.DDL) > 0 {
		risk = migrate.RiskHigh // it drops what the change added, with what was written there since
	}
	c := &Change{
		ID: uuid.NewString(), Ticket: orig.Ticket, Summary: "Revert: " + orig.Summary, SQL: sql.String(),
		Scope: orig.Scope, ScopeVersion: orig.ScopeVersion, Session: "revert", Mode: ModeReplay,
		Reverts: orig.ID, Revert: plan, Effects: effects, TTL: ttl,
		Report: &migrate.Report{Statements: []migrate.StatementReport{}, Warnings: []sqlguard.Finding{}, Risk: risk},
	}
	c.Fingerprint = c.Effects.Fingerprint()
	return c
}
