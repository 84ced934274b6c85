package review

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/airlock-dev/airlock/audit"
	"github.com/airlock-dev/airlock/migrate"
	"github.com/airlock-dev/airlock/scopes"
	"github.com/airlock-dev/airlock/sqlguard"
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
		return &NotRevertibleError{Change: c.ID, Reason: "it is " + c.Status + ", not committed"}
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

// purgeUndo deletes the captures past their retention.
func (s *Store) purgeUndo(ctx context.Context) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, "SELECT airlock.purge_undo()").Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("purge expired undo captures: %w", err)
	}
	return n, nil
}
