// The migration guard's entry: CheckMigration parses a migration and checks
// each statement with a migStmt, whose steps live in the other
// migration_*.go files.

package sqlguard

import (
	"fmt"
	"strings"

	"github.com/airlock-dev/airlock/codes"
	"github.com/airlock-dev/airlock/scopes"
	pg "github.com/pganalyze/pg_query_go/v6"
)

// MaxMigrationStatements is the most statements one migration may hold.
const MaxMigrationStatements = 100

// MigrationKinds is the closed list of statement kinds a migration may
// contain, in the order a scope's write.allow documents them: the scope
// format's scopes.WriteKinds, the one list of kind names.
var MigrationKinds = scopes.WriteKinds

// MigrationRefusalCodes documents every Refusal.Code CheckMigration returns
// (a FunctionChecker's own codes aside). Each one is stable; the Reason
// names the statement and the Hint says what to do instead.
//
// The codes and their meanings are the registry's (codes.MigrationGuard),
// which docs/refusals.md is generated from.
var MigrationRefusalCodes = codes.In(codes.MigrationGuard)

// CheckMigration parses sql (one or more statements), classifies each
// statement into exactly one of MigrationKinds and checks it against the
// policy. It returns the accepted plan, or a *Refusal for the first
// statement refused. It never touches a database.
//
// Decisions, all made on the parse tree:
//   - Statements that must never run under airlock (transaction control,
//     roles and privileges, settings, COPY, non-transactional statements,
//     code objects, ...) are refused whatever the scope allows; see
//     MigrationRefusalCodes. DO and CALL are refused unless the scope
//     allows kind "do" / "call"; their bodies are not inspected (CD101),
//     and a CALLed procedure must pass the FunctionChecker.
//   - An ALTER TABLE may combine subcommands: every subcommand's kind must
//     be allowed, Kinds lists them and Kind is the strongest (migAlterRank).
//   - Unqualified table names resolve through the read policy's search
//     path (default public): a new table or view to the first schema,
//     an existing one to the first schema where it is in scope. Statements
//     must run with that search path; QualifiedSQL spells every resolved
//     name out so that nothing depends on it.
//   - Every table the statement creates, alters, writes, drops or comments
//     on must be in Tables. Index names (DROP INDEX, ALTER INDEX RENAME,
//     COMMENT ON INDEX) cannot be mapped to their table without the
//     catalog: they are listed in Targets and IndexTargets as
//     "schema.index" and the caller must check their tables.
//   - Every other relation (INSERT ... SELECT, UPDATE ... FROM, DELETE ...
//     USING, subqueries, views' queries, FOREIGN KEY and LIKE targets) must
//     be writable or readable under Read.
//   - Columns of tables that have a read rule: a Denied or Masked column
//     may not be referenced anywhere (WHERE, SET values, SELECT, RETURNING,
//     CHECK, USING, FOREIGN KEY targets): a migration's values are never
//     masked and predicates leak by bisection. * and whole-row references
//     to such a table are refused. Unqualified names are matched against
//     every such table the statement names (conservative).
//   - Every function call goes through Read.Functions, except nextval in a
//     column DEFAULT of CREATE TABLE, ADD COLUMN or SET DEFAULT, whose one
//     argument must be a string literal naming a sequence (optionally cast
//     to regclass). The sequence is listed in Sequences and rendered
//     qualified; the caller checks that a writable table owns it.
//   - The read rules for expressions apply to every expression and name
//     anywhere in the statement (SET and VALUES, WHERE, RETURNING, ON
//     CONFLICT, DEFAULT, CHECK, generated columns, index expressions and
//     predicates, exclusion constraints, USING, view bodies): no xml or
//     reg* type (in casts and as column types), types and operator classes
//     qualified only with pg_catalog or a scope schema, operators and
//     collations qualified only with pg_catalog, no XML expressions.
//     CREATE TABLE ... LIKE may copy expressions (INCLUDING DEFAULTS,
//     CONSTRAINTS, GENERATED, INDEXES, STATISTICS) only from a writable
//     table, and never from a table with restricted columns.
//   - QualifiedSQL names every unqualified function pg_catalog.f(...) and
//     every unqualified operator OPERATOR(pg_catalog.op), so PostgreSQL
//     can only pick the pg_catalog objects the FunctionChecker and the
//     rules above decided on, whatever the search path holds. It is parsed
//     again and must give the checked tree back.
//   - DO runs only LANGUAGE plpgsql; its body must parse (DoBody).
//   - Data-modifying CTEs are refused; CASCADE is refused because it can
//     reach objects outside the scope.
//
// docs/architecture.md, Write statements: the read rules everywhere.
func (w *WritePolicy) CheckMigration(sql string) (*MigrationPlan, error) {
	tree, err := pg.Parse(sql)
	if err != nil {
		return nil, refuse("syntax_error", "fix the SQL; separate statements with semicolons",
			"the migration does not parse: %v", err)
	}
	if len(tree.Stmts) == 0 {
		return nil, refuse("empty", "send one or more SQL statements separated by semicolons",
			"the migration holds no statement")
	}
	if len(tree.Stmts) > MaxMigrationStatements {
		return nil, refuse("too_many_statements", "split the migration into several smaller ones",
			"the migration has %d statements; at most %d are allowed", len(tree.Stmts), MaxMigrationStatements)
	}
	fp, err := pg.Fingerprint(sql)
	if err != nil {
		return nil, fmt.Errorf("fingerprint migration: %w", err)
	}
	plan := &MigrationPlan{Fingerprint: fp}
	newColumns := map[string]bool{}
	for i, raw := range tree.Stmts {
		c := &migStmt{
			w:       w,
			read:    migReadPolicy(w),
			index:   i,
			version: tree.Version,
			multi:   len(tree.Stmts) > 1,
			raw:     raw,
			targets: map[*pg.RangeVar]string{},
			reads:   map[*pg.RangeVar]string{},
			nextval: map[*pg.FuncCall]bool{},
			exempt:  map[*pg.TypeName]bool{},
			out:     MigrationStatement{SQL: migStatementText(sql, raw), HasWhere: true},
			// Shared by the migration's statements: a statement may name
			// columns an earlier one added.
			newColumns: newColumns,
		}
		if r := c.check(); r != nil {
			return nil, r
		}
		plan.Statements = append(plan.Statements, c.out)
	}
	return plan, nil
}

func migReadPolicy(w *WritePolicy) *Policy {
	if w.Read != nil {
		return w.Read
	}
	return &Policy{}
}

// migStatementText recovers a statement's original text from its location
// in the migration: PostgreSQL's stmt_len is 0 for the last statement when
// it runs to the end of the input.
func migStatementText(sql string, raw *pg.RawStmt) string {
	start := int(raw.StmtLocation)
	end := len(sql)
	if raw.StmtLen > 0 && start+int(raw.StmtLen) <= len(sql) {
		end = start + int(raw.StmtLen)
	}
	if start < 0 || start > end {
		start = 0
	}
	text := strings.TrimSpace(sql[start:end])
	return strings.TrimSpace(strings.TrimSuffix(text, ";"))
}

// migStmt is the state of checking one statement.
type migStmt struct {
	w       *WritePolicy
	read    *Policy
	index   int
	version int32
	multi   bool
	raw     *pg.RawStmt
	out     MigrationStatement
	kinds   []string
	// targets maps the RangeVars the statement creates, alters or writes
	// to their resolved name; every other RangeVar that is not a CTE is a
	// read.
	targets map[*pg.RangeVar]string
	// newRel is the RangeVar of a relation the statement creates.
	newRel *pg.RangeVar
	// indexRels are RangeVars that name an index, not a table.
	indexRels []*pg.RangeVar
	// listTargets are targets named by string lists (DROP, COMMENT ON).
	listTargets []*migListTarget
	// reads maps the RangeVars the statement only reads to their resolved
	// name.
	reads map[*pg.RangeVar]string
	// nextval holds the nextval calls allowed in a column DEFAULT.
	nextval map[*pg.FuncCall]bool
	// exempt holds the regclass casts of those calls' arguments, the one
	// place an object identifier type is allowed.
	exempt map[*pg.TypeName]bool
	// sequences are the sequence names of those calls, rendered qualified.
	sequences []migSequence
	// doLanguage is the LANGUAGE of a DO statement.
	doLanguage string
	// newColumns holds "schema.table.column" for the columns this
	// migration creates, adds or renames to, up to this statement.
	newColumns map[string]bool
	walk       migWalk
}

func (c *migStmt) refuse(code, hint, format string, args ...any) *Refusal {
	r := refuse(code, hint, format, args...)
	if c.multi {
		r.Reason = fmt.Sprintf("statement %d: %s", c.index+1, r.Reason)
	}
	return r
}

func (c *migStmt) check() *Refusal {
	if r := c.classify(c.raw.Stmt); r != nil {
		return r
	}
	c.walk.node(c.raw.Stmt.ProtoReflect(), nil)
	for _, cte := range c.walk.ctes {
		if migIsWrite(cte.Ctequery) {
			return c.refuse("data_modifying_cte", "write each INSERT, UPDATE or DELETE as its own statement",
				"WITH %s (...) modifies data inside a WITH clause", cte.Ctename)
		}
	}
	for _, step := range []func() *Refusal{
		c.checkKinds, c.checkDo, c.checkTargets, c.recordColumns, c.checkReads, c.checkNextval,
		c.checkFunctions, c.checkNames, c.checkLikes, c.checkColumns, c.checkFieldNotation,
	} {
		if r := step(); r != nil {
			return r
		}
	}
	c.findings()
	return c.qualify()
}

// wrap prefixes a refusal made by a shared read rule with the statement
// number, as c.refuse does.
func (c *migStmt) wrap(r *Refusal) *Refusal {
	if r == nil || !c.multi {
		return r
	}
	out := *r
	out.Reason = fmt.Sprintf("statement %d: %s", c.index+1, out.Reason)
	return &out
}

func migIsWrite(n *pg.Node) bool {
	switch n.GetNode().(type) {
	case *pg.Node_InsertStmt, *pg.Node_UpdateStmt, *pg.Node_DeleteStmt, *pg.Node_MergeStmt:
		return true
	}
	return false
}
