package migrate

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/airlock-dev/airlock/codes"
	"github.com/airlock-dev/airlock/scopes"
	"github.com/airlock-dev/airlock/sqlguard"
)

// FindingDoc documents one finding code: its title, its one-line fix and
// the level it is documented at.
type FindingDoc struct {
	Title string
	Fix   string
	Level string
}

// RuntimeFindings documents every code Run adds to (or upgrades in) a
// report: the ones only a run can observe, the registry's dry-run part
// (codes.DryRun), which docs/findings.md is generated from. The
// parse-tree codes come from sqlguard; PG101, PG303 and PG305 are shared,
// and Run raises them to "warning" when the table turns out to be large.
var RuntimeFindings = func() map[string]FindingDoc {
	m := map[string]FindingDoc{}
	for code, f := range codes.FindingsBy(codes.DryRun) {
		m[code] = FindingDoc{Title: f.Title, Fix: f.Fix, Level: string(f.Level)}
	}
	return m
}()

// Finding levels as sqlguard.Finding carries them.
const (
	levelWarning = string(codes.LevelWarning)
	levelDanger  = string(codes.LevelDanger)
)

func levelRank(level string) int { return codes.Level(level).Rank() }

func finding(code, level, message string, stmt int) sqlguard.Finding {
	return sqlguard.Finding{Code: code, Level: level, Message: message, Fix: RuntimeFindings[code].Fix, Statement: stmt}
}

// findings copies the plan's parse-tree findings and adds the runtime ones,
// grouped by statement, migration-wide ones last.
func (r *runner) findings(after *catalog) []sqlguard.Finding {
	out := []sqlguard.Finding{} // JSON [] rather than null
	for i := range r.plan.Statements {
		out = append(out, r.statementFindings(i, after)...)
	}
	out = append(out, r.narrowings(after)...)
	out = append(out, r.heldLockFindings()...)
	out = append(out, r.irreversible()...)
	sort.SliceStable(out, func(i, j int) bool {
		return uint(out[i].Statement) < uint(out[j].Statement) // -1 sorts last
	})
	return out
}

func (r *runner) statementFindings(i int, after *catalog) []sqlguard.Finding {
	st := &r.plan.Statements[i]
	sr := &r.report.Statements[i]
	fs := append([]sqlguard.Finding(nil), st.Findings...)
	large := r.opt.LargeTableRows

	held := "until the transaction ends"
	if r.end == EndPrepare {
		held = "until the review commits or rolls back the prepared transaction"
	}
	for _, l := range sr.Locks {
		if n, ok := r.rowsOf(l.Relation, after); ok && l.Mode == accessExclusive && n > large {
			fs = append(fs, finding("LK101", levelWarning, fmt.Sprintf(
				"takes an ACCESS EXCLUSIVE lock on %s (~%d rows): every read and write of it waits %s", l.Relation, n, held), i))
		}
	}
	for _, t := range sr.Rewritten {
		n, _ := r.rowsOf(t, after)
		level := levelWarning
		if n > large {
			level = levelDanger
		}
		fs = append(fs, finding("RW101", level, fmt.Sprintf(
			"rewrote %s (~%d rows) under an ACCESS EXCLUSIVE lock", t, n), i))
	}

	if t, n := r.largestTarget(st, after); n > large {
		if hasKind(st, scopes.KindCreateIndex) {
			fs = raise(fs, i, "PG101", fmt.Sprintf("builds an index on %s (~%d rows) while blocking its writes", t, n))
		}
		if hasKind(st, scopes.KindSetNotNull) {
			fs = raise(fs, i, "PG303", fmt.Sprintf("SET NOT NULL scans %s (~%d rows) under ACCESS EXCLUSIVE", t, n))
		}
		if hasKind(st, scopes.KindAddConstraint) && !st.NotValid {
			fs = raise(fs, i, "PG305", fmt.Sprintf("validating the constraint scans %s (~%d rows)", t, n))
		}
	}
	if sr.allRows {
		fs = append(fs, finding("RA102", levelDanger, fmt.Sprintf(
			"%s reached every row of %s (%d rows) although it has a WHERE clause", strings.ToUpper(st.Kind), st.Targets[0], sr.RowsAffected), i))
	}
	if sr.RowsAffected > r.opt.RowsAffectedWarn {
		fs = append(fs, finding("RA101", levelWarning, fmt.Sprintf(
			"affected %d rows (threshold %d)", sr.RowsAffected, r.opt.RowsAffectedWarn), i))
	}
	return fs
}

// heldLockFindings reports LK102 for each pre-existing relation a
// prepared change would keep locked at SHARE or stronger (blocking its
// writes, or with ACCESS EXCLUSIVE its reads too) until a reviewer acts,
// attributed to the statement that took the lock first.
func (r *runner) heldLockFindings() []sqlguard.Finding {
	if !r.opt.Prepared && r.end != EndPrepare {
		return nil
	}
	var held []Lock
	for oid, mode := range r.obs.strongest {
		if _, existed := r.before.rels[oid]; existed && lockRank[mode] >= lockRank["ShareLock"] {
			held = append(held, Lock{Relation: r.obs.names[oid], Mode: mode})
		}
	}
	sortLocks(held)
	var out []sqlguard.Finding
	for _, l := range held {
		stmt := -1
		for i, sr := range r.report.Statements {
			if slices.ContainsFunc(sr.Locks, func(x Lock) bool { return x.Relation == l.Relation && lockRank[x.Mode] >= lockRank["ShareLock"] }) {
				stmt = i
				break
			}
		}
		what := "every write of it waits"
		if l.Mode == accessExclusive {
			what = "every read and write of it waits"
			if !r.opt.AllowBlockingLocks {
				what += "; apply_migration_with_ticket refuses this in prepared mode unless the scope sets write.allow_blocking_locks"
			}
		}
		out = append(out, finding("LK102", levelDanger, fmt.Sprintf(
			"the prepared transaction keeps %s on %s until a reviewer commits or rolls it back: %s", l.Mode, l.Relation, what), stmt))
	}
	return out
}

// raise makes the statement's finding code at least a warning, adding it
// when the parse tree did not report it.
func raise(fs []sqlguard.Finding, stmt int, code, message string) []sqlguard.Finding {
	for k := range fs {
		if fs[k].Code == code && fs[k].Statement == stmt {
			if levelRank(fs[k].Level) < levelRank(levelWarning) {
				fs[k].Level = levelWarning
			}
			fs[k].Message += " (" + message + ")"
			return fs
		}
	}
	return append(fs, finding(code, levelWarning, message, stmt))
}

// rowsOf is the estimated row count of a pre-existing relation, found by
// its name before or after the migration (a lock names the relation as it
// is named when observed, possibly after a rename).
func (r *runner) rowsOf(name string, after *catalog) (int64, bool) {
	rel := r.before.byName(name)
	if rel == nil {
		rel = after.byName(name)
	}
	if rel == nil {
		return 0, false
	}
	n, ok := r.rows[rel.OID]
	return n, ok
}

func (r *runner) largestTarget(st *sqlguard.MigrationStatement, after *catalog) (string, int64) {
	var name string
	var most int64 = -1
	for _, t := range st.Targets {
		if n, ok := r.rowsOf(t, after); ok && n > most {
			name, most = t, n
		}
	}
	return name, most
}

// narrowings reports DS105 for every column whose type the migration
// narrowed, attributed to the first alter_column_type statement on its
// table.
func (r *runner) narrowings(after *catalog) []sqlguard.Finding {
	var out []sqlguard.Finding
	for k, a := range after.columns {
		b := r.before.columns[k]
		if b == nil || !narrows(b.TypeOID, b.TypeMod, a.TypeOID, a.TypeMod) {
			continue
		}
		table := after.rels[k.rel].qualified()
		stmt := -1
		for i, st := range r.plan.Statements {
			if hasKind(&st, scopes.KindAlterColumnType) && (contains(st.Targets, table) || contains(st.Targets, r.before.rels[k.rel].qualified())) {
				stmt = i
				break
			}
		}
		out = append(out, finding("DS105", levelWarning, fmt.Sprintf(
			"narrows %s.%s from %s to %s: values that do not fit fail the migration now, and writers sending them fail later", table, a.Name, b.Type, a.Type), stmt))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Message < out[j].Message })
	return out
}

// hasKind reports whether kind is the statement's kind or one of the kinds
// of its ALTER TABLE subcommands.
func hasKind(st *sqlguard.MigrationStatement, kind string) bool {
	return st.Kind == kind || contains(st.Kinds, kind)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Risk is a migration's risk rating (Report.Risk); it encodes as the plain
// string the migrate_dry_run output contract has always carried.
type Risk string

// Risk levels, lowest first.
const (
	RiskLow      Risk = "low"
	RiskModerate Risk = "moderate"
	RiskHigh     Risk = "high"
)

var riskLevels = []Risk{RiskLow, RiskModerate, RiskHigh}

// highKinds destroy data; lowKinds only add. Every other kind of
// scopes.WriteKinds (UPDATE, DELETE, DROP INDEX, DROP VIEW, the ALTER TABLE
// family, DO and CALL, whose CD101 finding makes them high anyway) and any
// kind this package does not know is moderate.
var (
	highKinds = map[string]bool{scopes.KindDropTable: true, scopes.KindTruncate: true, scopes.KindDropColumn: true}
	lowKinds  = map[string]bool{
		scopes.KindInsert: true, scopes.KindCreateTable: true, scopes.KindCreateIndex: true, scopes.KindCreateView: true, scopes.KindComment: true,
	}
)

// risk rates a migration: high for a destructive kind or any danger
// finding, moderate for a modifying kind or any warning, low otherwise;
// then one level up when the run saw a large table locked ACCESS EXCLUSIVE
// or rewritten, or more rows affected than the threshold.
func risk(plan *sqlguard.MigrationPlan, warnings []sqlguard.Finding) Risk {
	level := 0
	for _, st := range plan.Statements {
		for _, k := range append([]string{st.Kind}, st.Kinds...) {
			switch {
			case highKinds[k]:
				level = max(level, 2)
			case !lowKinds[k]:
				level = max(level, 1)
			}
		}
	}
	raised := false
	for _, f := range warnings {
		level = max(level, levelRank(f.Level))
		switch {
		case f.Code == "LK101", f.Code == "RA101", f.Code == "RW101" && f.Level == levelDanger:
			raised = true
		}
	}
	if raised {
		level = min(level+1, 2)
	}
	return riskLevels[level]
}

// Revertible lists the statement kinds airlock revert can undo when the
// scope's undo is on (docs/architecture.md, Undo): row changes, from the
// rows captured at commit; what adds a table, column or index, by
// dropping it again; drops, from the trash; renames, by renaming back;
// a column's type, default and NOT NULL, from its definition before (and
// for a type change a copy of its values) kept in the trash.
// The run can still find a statement of these kinds irreversible (a
// CASCADE, a table without a key for a dropped column's values).
var Revertible = map[string]bool{
	scopes.KindInsert: true, scopes.KindUpdate: true, scopes.KindDelete: true, scopes.KindTruncate: true,
	scopes.KindCreateTable: true, scopes.KindAddColumn: true, scopes.KindCreateIndex: true,
	scopes.KindDropTable: true, scopes.KindDropColumn: true, scopes.KindRename: true,
	scopes.KindAlterColumnType: true, scopes.KindSetDefault: true, scopes.KindDropDefault: true, scopes.KindSetNotNull: true, scopes.KindDropNotNull: true,
}

// IrreversibleReason says why statement st cannot be reverted, or "".
func IrreversibleReason(st *sqlguard.MigrationStatement) string {
	for _, k := range append([]string{st.Kind}, st.Kinds...) {
		if !Revertible[k] {
			switch k {
			case scopes.KindDo, scopes.KindCall:
				return fmt.Sprintf("a %s statement runs code whose effects airlock cannot capture", strings.ToUpper(k))
			}
			return fmt.Sprintf("airlock revert cannot undo a %s statement", strings.ReplaceAll(k, "_", " "))
		}
	}
	return ""
}

// irreversible flags, when undo is on, each statement a revert could not
// undo: the reviewer must know before approving that this one is final.
func (r *runner) irreversible() []sqlguard.Finding {
	if !r.opt.Undo {
		return nil
	}
	var out []sqlguard.Finding
	for i := range r.plan.Statements {
		why := IrreversibleReason(&r.plan.Statements[i])
		if why == "" {
			why = r.trashBlocked[i]
		}
		if why != "" {
			out = append(out, finding("UN101", levelDanger, why+": once committed, airlock revert cannot bring back what it changes", i))
		}
	}
	if len(out) == 0 {
		var trash []TrashEntry
		for i := range r.plan.Statements {
			trash = append(trash, r.trash[i]...)
		}
		if _, err := InverseOf(r.report.SchemaDiff, trash, nil); err != nil {
			out = append(out, finding("UN101", levelDanger, err.Error()+": once committed, airlock revert cannot bring that back", -1))
		}
	}
	return out
}
