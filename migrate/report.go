package migrate

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/airlock-dev/airlock/sqlguard"
)

// Report is what a run did. Its JSON shape is the migrate_dry_run output
// contract (docs/architecture.md, Results): keep the field names.
type Report struct {
	Statements []StatementReport `json:"statements"`
	SchemaDiff SchemaDiff        `json:"schema_diff"`
	// Warnings are the plan's parse-tree findings followed, statement by
	// statement, by what the run observed (RuntimeFindings).
	Warnings []sqlguard.Finding `json:"warnings"`
	// Risk is RiskLow, RiskModerate or RiskHigh.
	Risk Risk `json:"risk"`
	// ElapsedMS is the wall time of the whole run, observation included.
	ElapsedMS float64 `json:"elapsed_ms"`
	// HeldLocks is the strongest lock held on each user relation when the
	// statements are done: what a prepared transaction keeps holding
	// until it is reviewed.
	HeldLocks []Lock `json:"held_locks"`
}

// StatementReport is what one statement did.
type StatementReport struct {
	// SQL is the statement as the agent wrote it.
	SQL string `json:"sql"`
	// ExecutedSQL is the text actually run when it differs from SQL: the
	// guard's schema-qualified rendering.
	ExecutedSQL string `json:"executed_sql,omitempty"`
	// Kind is the statement's kind; Kinds lists every kind of an ALTER
	// TABLE with several subcommands, strongest first.
	Kind         string   `json:"kind"`
	Kinds        []string `json:"kinds,omitempty"`
	RowsAffected int64    `json:"rows_affected"`
	ElapsedMS    float64  `json:"elapsed_ms"`
	// Locks are the locks the statement took that the transaction did not
	// already hold at that strength: one per relation, its strongest mode.
	Locks []Lock `json:"locks"`
	// RewritesTable is true when a pre-existing table got a new, non-empty
	// heap file (pg_class.relfilenode changed): its rows were copied.
	RewritesTable bool     `json:"rewrites_table"`
	Rewritten     []string `json:"rewritten,omitempty"`
	// Compared says what a commit compares of the rows this statement
	// touched (docs/architecture.md, Effects).
	Compared string `json:"compared,omitempty"`
	// Rows is the statement's row image. It never leaves the service or
	// the review store: its salt keeps the hash from being an oracle only
	// while the agent does not see it.
	Rows *RowsEffect `json:"-"`
	// allRows is set when an UPDATE or DELETE with a WHERE clause reached
	// every row of its table.
	allRows bool
}

// Effects is the part of a report that must be identical when a migration
// is replayed for real: rows affected per statement, the row image of
// each data-changing statement, and the schema diff.
type Effects struct {
	RowsAffected []int64    `json:"rows_affected"`
	SchemaDiff   SchemaDiff `json:"schema_diff"`
	// Rows holds one row image per statement (a zero one for a statement
	// without rows). Changes recorded before row images existed have none.
	Rows []RowsEffect `json:"rows,omitempty"`
}

// Effects extracts the report's effects.
func (r *Report) Effects() Effects {
	e := Effects{RowsAffected: make([]int64, len(r.Statements))}
	images := false
	for i, s := range r.Statements {
		e.RowsAffected[i] = s.RowsAffected
		images = images || s.Rows != nil
	}
	if images {
		e.Rows = make([]RowsEffect, len(r.Statements))
		for i, s := range r.Statements {
			if s.Rows != nil {
				e.Rows[i] = *s.Rows
			}
		}
	}
	e.SchemaDiff.Changes = append([]SchemaChange{}, r.SchemaDiff.Changes...)
	return e
}

// canonical makes empty and nil lists encode alike.
func (e Effects) canonical() Effects {
	if e.RowsAffected == nil {
		e.RowsAffected = []int64{}
	}
	if e.SchemaDiff.Changes == nil {
		e.SchemaDiff.Changes = []SchemaChange{}
	}
	return e
}

// Fingerprint is the hex SHA-256 of a canonical encoding of the effects:
// equal effects have equal fingerprints.
func (e Effects) Fingerprint() string {
	b, err := json.Marshal(e.canonical())
	if err != nil {
		panic(fmt.Sprintf("migrate: encode effects: %v", err)) // plain data cannot fail
	}
	sum := sha256.Sum256(append([]byte("airlock-effects-v1\n"), b...))
	return hex.EncodeToString(sum[:])
}

// Compare lists, in words, how other differs from e (e is what was
// expected, other what happened). It returns nil when they are identical.
func (e Effects) Compare(other Effects) []string {
	var diffs []string
	if len(e.RowsAffected) != len(other.RowsAffected) {
		diffs = append(diffs, fmt.Sprintf("expected %d statements, got %d", len(e.RowsAffected), len(other.RowsAffected)))
	}
	for i := range min(len(e.RowsAffected), len(other.RowsAffected)) {
		if e.RowsAffected[i] != other.RowsAffected[i] {
			diffs = append(diffs, fmt.Sprintf("statement %d affected %d rows, expected %d", i+1, other.RowsAffected[i], e.RowsAffected[i]))
			continue
		}
		if i >= len(e.Rows) || e.Rows[i].Hash == "" {
			continue
		}
		var got RowsEffect
		if i < len(other.Rows) {
			got = other.Rows[i]
		}
		switch {
		case got.Hash == "":
			diffs = append(diffs, fmt.Sprintf("statement %d: the rows it changed could not be compared with the dry run's (%s): a column of the image is gone or no longer readable", i+1, e.Rows[i].Compared))
		case got.Hash != e.Rows[i].Hash:
			diffs = append(diffs, fmt.Sprintf("statement %d affected the same number of rows (%d) but not the same rows or values as in the dry run (compared: %s)", i+1, e.RowsAffected[i], e.Rows[i].Compared))
		}
	}
	want := map[SchemaChange]int{}
	for _, c := range e.SchemaDiff.Changes {
		want[c]++
	}
	for _, c := range other.SchemaDiff.Changes {
		if want[c] > 0 {
			want[c]--
			continue
		}
		diffs = append(diffs, "unexpected schema change: "+c.String())
	}
	for _, c := range e.SchemaDiff.Changes {
		if want[c] > 0 {
			want[c]--
			diffs = append(diffs, "missing schema change: "+c.String())
		}
	}
	return diffs
}

// String renders a change on one line, e.g. "column public.orders.total
// changed: integer -> bigint".
func (c SchemaChange) String() string {
	s := c.Object + " " + c.Name + " " + c.Action
	switch c.Action {
	case "added":
		s += ": " + c.After
	case "dropped":
		s += ": " + c.Before
	case "changed":
		s += ": " + c.Before + " -> " + c.After
	case "renamed":
		s += " to " + c.After
	}
	return s
}

// Text renders the report compactly for a human or an agent.
func (r *Report) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "risk: %s, %d statement%s, %.1f ms\n", r.Risk, len(r.Statements), plural(len(r.Statements)), r.ElapsedMS)
	for i, s := range r.Statements {
		fmt.Fprintf(&b, "%d. [%s] %s\n", i+1, s.Kind, clip(oneLine(s.SQL), 300))
		fmt.Fprintf(&b, "   %d row%s, %.1f ms, locks: %s", s.RowsAffected, plural(int(s.RowsAffected)), s.ElapsedMS, lockList(s.Locks, "no new locks"))
		if s.RewritesTable {
			fmt.Fprintf(&b, ", rewrote %s", strings.Join(s.Rewritten, ", "))
		}
		b.WriteString("\n")
		if s.Compared != "" {
			fmt.Fprintf(&b, "   a commit compares: %s\n", s.Compared)
		}
	}
	if len(r.SchemaDiff.Changes) == 0 {
		b.WriteString("schema diff: none\n")
	} else {
		fmt.Fprintf(&b, "schema diff (%d):\n", len(r.SchemaDiff.Changes))
		for _, c := range r.SchemaDiff.Changes {
			b.WriteString("  " + changeMark[c.Action] + " " + clip(c.String(), 300) + "\n")
		}
	}
	if len(r.Warnings) > 0 {
		fmt.Fprintf(&b, "warnings (%d):\n", len(r.Warnings))
		for _, f := range r.Warnings {
			where := "migration"
			if f.Statement >= 0 {
				where = fmt.Sprintf("statement %d", f.Statement+1)
			}
			fmt.Fprintf(&b, "  %s %s (%s): %s", f.Level, f.Code, where, f.Message)
			if f.Fix != "" {
				b.WriteString(". Fix: " + f.Fix)
			}
			b.WriteString("\n")
		}
	}
	fmt.Fprintf(&b, "held locks at the end: %s\n", lockList(r.HeldLocks, "none"))
	return b.String()
}

var changeMark = map[string]string{"added": "+", "dropped": "-", "changed": "~", "renamed": ">"}

func lockList(ls []Lock, none string) string {
	if len(ls) == 0 {
		return none
	}
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = l.Relation + " " + l.Mode
	}
	return strings.Join(parts, ", ")
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s… (%d more bytes)", s[:cut], len(s)-cut)
}
