package codes

// Level is how serious a finding of a dry-run report is. The report's
// JSON carries it as a plain string (sqlguard.Finding.Level).
type Level string

// The finding levels, weakest first.
const (
	LevelInfo    Level = "info"
	LevelWarning Level = "warning"
	LevelDanger  Level = "danger"
)

// Levels lists the finding levels, weakest first.
var Levels = []Level{LevelInfo, LevelWarning, LevelDanger}

// Rank orders levels, weakest first: 0 for info, 1 for warning, 2 for
// danger. A level this package does not know ranks as info, so it can
// never make a report look more serious than its findings.
func (l Level) Rank() int {
	for i, x := range Levels {
		if x == l {
			return i
		}
	}
	return 0
}

// FoundBy says what reports a finding.
type FoundBy string

// What reports findings.
const (
	// ParseTree: sqlguard.CheckMigration, from the statement alone.
	ParseTree FoundBy = "parse tree"
	// DryRun: migrate.Run, from what the run observed (locks, rewrites,
	// rows, the catalog before and after). It may report a parse-tree
	// code again, raised, when the table turns out to be large.
	DryRun FoundBy = "dry run"
)

// Finding is one registered finding code: who reports it, its title, the
// level it is documented at and its one-line fix. A code may be
// registered for both ParseTree and DryRun, with a title, level and fix
// of its own in each.
type Finding struct {
	Code    string
	FoundBy FoundBy
	Title   string
	Level   Level
	Fix     string
}

// Findings holds every finding code of a dry-run report. docs/findings.md
// is generated from it, and the package's test checks that it names
// exactly the codes the source reports.
var Findings = []Finding{
	{"DS102", ParseTree, "Table dropped", LevelDanger, "rename the table and drop it in a later migration, or export its data first"},
	{"DS103", ParseTree, "Column dropped", LevelDanger, "stop using the column in code, export it if needed, then drop it in a later migration"},
	{"DS104", ParseTree, "Table truncated", LevelDanger, "delete only the rows you mean with DELETE ... WHERE, or export the table first"},
	{"DL101", ParseTree, "DELETE without WHERE", LevelDanger, "add a WHERE clause that selects only the rows to delete"},
	{"DL102", ParseTree, "UPDATE without WHERE", LevelDanger, "add a WHERE clause that selects only the rows to change"},
	{"BC101", ParseTree, "Table or view renamed", LevelWarning, "ship code that uses the new name first, or keep a view under the old name for a while"},
	{"BC102", ParseTree, "Column renamed", LevelWarning, "add the new column, backfill it, switch the code, and drop the old column later"},
	{"MF103", ParseTree, "NOT NULL column added without a default", LevelWarning, "add a DEFAULT, or add the column nullable, backfill it, then SET NOT NULL"},
	{"MF104", ParseTree, "Column set NOT NULL", LevelWarning, "add CHECK (col IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT, then SET NOT NULL"},
	{"PG101", ParseTree, "Index created without CONCURRENTLY", LevelInfo, "on a large table use CREATE INDEX CONCURRENTLY outside airlock"},
	{"PG301", ParseTree, "Column type changed", LevelWarning, "add a column of the new type, backfill it and switch the code; check the data before narrowing"},
	{"PG302", ParseTree, "Column added with a volatile default", LevelWarning, "add the column without a default (or with a constant one), then backfill it in batches"},
	{"PG305", ParseTree, "Constraint added with validation", LevelInfo, "add CHECK/FOREIGN KEY as NOT VALID then VALIDATE CONSTRAINT; for UNIQUE/PRIMARY KEY build the index first and use USING INDEX"},
	{"CD101", ParseTree, "Procedural code not inspected", LevelDanger, "write the statements as plain SQL so airlock can check each of them"},

	{"LK101", DryRun, "ACCESS EXCLUSIVE lock on a large table", LevelWarning, "Keep the locking statement short and alone, run it in a quiet window with a short lock_timeout; in prepared mode review it quickly, the lock is held until then"},
	{"RW101", DryRun, "Table rewritten", LevelWarning, "Avoid the rewrite (add the column without a volatile default and backfill in batches; change to a binary-coercible type) or run it in a maintenance window"},
	{"PG101", DryRun, "Index built without CONCURRENTLY on a large table", LevelWarning, "Build it with CREATE INDEX CONCURRENTLY outside airlock (it cannot run in a transaction), or in a maintenance window"},
	{"PG303", DryRun, "SET NOT NULL scans a large table under ACCESS EXCLUSIVE", LevelWarning, "Add CHECK (col IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT it, then SET NOT NULL: the scan is skipped"},
	{"PG305", DryRun, "Constraint validated by scanning a large table", LevelWarning, "Add the constraint NOT VALID, then VALIDATE CONSTRAINT in a later migration: validation takes a weaker lock"},
	{"RA101", DryRun, "Many rows affected", LevelWarning, "Check the WHERE clause; batch large updates and deletes by primary-key ranges"},
	{"RA102", DryRun, "Every row of a table affected despite a WHERE clause", LevelDanger, "Check the WHERE clause: it matched every row, which is as destructive as having none"},
	// LK102 is reported at danger; the page has always documented it as a
	// warning, and this refactor keeps the page as it was.
	{"LK102", DryRun, "Prepared change holds a blocking lock until it is reviewed", LevelWarning, "Use replay mode for DDL on tables in use, or split the change so the prepared part takes only row locks; write.allow_blocking_locks opts in"},
	{"UN101", DryRun, "Cannot be reverted (undo is on)", LevelDanger, "Split the change so this statement stands alone and export what it destroys first; airlock revert restores rows, drops what was added, renames back and brings dropped tables and columns back from airlock_trash (without CASCADE, and for a column a primary key to keep its values by)"},
	{"DS105", DryRun, "Narrowing type change", LevelWarning, "Check existing and incoming values fit the new type (max(length(col)), max(abs(col))), or keep the wider type"},
}

// FindingsBy returns the finding codes registered for by.
func FindingsBy(by FoundBy) map[string]Finding {
	m := map[string]Finding{}
	for _, f := range Findings {
		if f.FoundBy == by {
			m[f.Code] = f
		}
	}
	return m
}
