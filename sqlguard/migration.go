package sqlguard

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// MaxMigrationStatements is the most statements one migration may hold.
const MaxMigrationStatements = 100

// MigrationKinds is the closed list of statement kinds a migration may
// contain, in the order a scope's write.allow documents them. It mirrors
// scopes.WriteKinds; sqlguard does not import scopes.
var MigrationKinds = []string{
	"create_table", "drop_table", "add_column", "drop_column",
	"alter_column_type", "set_not_null", "drop_not_null", "set_default",
	"drop_default", "add_constraint", "drop_constraint", "validate_constraint",
	"create_index", "drop_index", "rename", "insert", "update", "delete",
	"truncate", "create_view", "drop_view", "comment", "do", "call",
}

// MigrationRefusalCodes documents every Refusal.Code CheckMigration returns
// (a FunctionChecker's own codes aside). Each one is stable; the Reason
// names the statement and the Hint says what to do instead.
var MigrationRefusalCodes = map[string]string{
	"syntax_error":          "the migration does not parse",
	"empty":                 "the migration holds no statement",
	"too_many_statements":   "more than MaxMigrationStatements statements",
	"statement_not_allowed": "the statement (or ALTER TABLE subcommand) is not one of MigrationKinds",
	"kind_not_allowed":      "the statement's kind (any one of an ALTER TABLE's subcommand kinds) is not in write.allow",
	"table_not_writable":    "a table the statement creates, alters, writes, drops or comments on is not in write.tables",
	"table_not_in_scope":    "a table the statement only reads is neither writable nor readable",
	"column_not_allowed":    "a denied or masked column of a read table is used, or * / a whole-row reference would expose one",
	"function_not_allowed":  "a function call is refused (the read policy's FunctionChecker may use its own code instead)",
	"cross_database":        "a name is qualified with a database",
	"transaction_control":   "BEGIN, COMMIT, ROLLBACK, SAVEPOINT, PREPARE TRANSACTION and the like",
	"privileges":            "roles, GRANT/REVOKE, default privileges, SET ROLE, SET SESSION AUTHORIZATION, OWNER TO",
	"session_setting":       "SET, RESET, SET TRANSACTION, SET CONSTRAINTS",
	"server_config":         "ALTER SYSTEM",
	"database":              "CREATE, ALTER, DROP or RENAME DATABASE",
	"tablespace":            "CREATE, ALTER, DROP or RENAME TABLESPACE",
	"extension":             "CREATE, ALTER or DROP EXTENSION",
	"load":                  "LOAD of a shared library",
	"copy":                  "any COPY",
	"not_transactional":     "statements that cannot run in (or be rolled back with) a transaction block",
	"listen_notify":         "LISTEN, NOTIFY, UNLISTEN",
	"prepared_statement":    "PREPARE, EXECUTE, DEALLOCATE",
	"cursor":                "DECLARE, FETCH, CLOSE",
	"lock":                  "LOCK TABLE",
	"code_object":           "functions, procedures, triggers, rules, event triggers, policies, aggregates, languages, casts, transforms",
	"security_label":        "SECURITY LABEL",
	"temp_object":           "temporary or unlogged tables and temporary views",
	"create_table_as":       "CREATE TABLE AS and SELECT INTO",
	"cascade":               "DROP, TRUNCATE or DROP COLUMN/CONSTRAINT with CASCADE",
	"data_modifying_cte":    "INSERT, UPDATE, DELETE or MERGE inside WITH",
	"type_not_allowed":      "an xml or object identifier (reg*) type anywhere (casts, column types), or a type qualified with a schema that is neither pg_catalog nor one of the scope's",
	"operator_not_allowed":  "an operator qualified with a schema other than pg_catalog",
	"collation_not_allowed": "a collation qualified with a schema other than pg_catalog",
	"opclass_not_allowed":   "an operator class qualified with a schema that is neither pg_catalog nor one of the scope's",
	"like_not_allowed":      "CREATE TABLE ... LIKE of a table with restricted columns, or copying expressions (INCLUDING DEFAULTS, CONSTRAINTS, GENERATED, INDEXES, STATISTICS) from a table that is not writable",
}

// FindingInfo documents one finding code for the findings page.
type FindingInfo struct {
	Title string
	Level string
	Fix   string
}

// FindingCatalog documents every finding code CheckMigration emits. The
// runtime report (dry run) adds its own codes elsewhere.
var FindingCatalog = map[string]FindingInfo{
	"DS102": {"Table dropped", "danger", "rename the table and drop it in a later migration, or export its data first"},
	"DS103": {"Column dropped", "danger", "stop using the column in code, export it if needed, then drop it in a later migration"},
	"DS104": {"Table truncated", "danger", "delete only the rows you mean with DELETE ... WHERE, or export the table first"},
	"DL101": {"DELETE without WHERE", "danger", "add a WHERE clause that selects only the rows to delete"},
	"DL102": {"UPDATE without WHERE", "danger", "add a WHERE clause that selects only the rows to change"},
	"BC101": {"Table or view renamed", "warning", "ship code that uses the new name first, or keep a view under the old name for a while"},
	"BC102": {"Column renamed", "warning", "add the new column, backfill it, switch the code, and drop the old column later"},
	"MF103": {"NOT NULL column added without a default", "warning", "add a DEFAULT, or add the column nullable, backfill it, then SET NOT NULL"},
	"MF104": {"Column set NOT NULL", "warning", "add CHECK (col IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT, then SET NOT NULL"},
	"PG101": {"Index created without CONCURRENTLY", "info", "on a large table use CREATE INDEX CONCURRENTLY outside airlock"},
	"PG301": {"Column type changed", "warning", "add a column of the new type, backfill it and switch the code; check the data before narrowing"},
	"PG302": {"Column added with a volatile default", "warning", "add the column without a default (or with a constant one), then backfill it in batches"},
	"PG305": {"Constraint added with validation", "info", "add CHECK/FOREIGN KEY as NOT VALID then VALIDATE CONSTRAINT; for UNIQUE/PRIMARY KEY build the index first and use USING INDEX"},
	"CD101": {"Procedural code not inspected", "danger", "write the statements as plain SQL so airlock can check each of them"},
}

// VolatilityReporter may be implemented by a FunctionChecker that knows
// each function's volatility from the catalog (pg_proc.provolatile: 'i',
// 's' or 'v'; ok false when it does not know the function). CheckMigration
// uses it, or a FunctionRule's Volatility table, to decide PG302; without
// either, a short built-in list of non-volatile functions decides and every
// other function counts as possibly volatile.
type VolatilityReporter interface {
	FunctionVolatility(schema, name string) (volatility byte, ok bool)
}

// migNonVolatile are functions known not to be volatile, used for PG302 when
// the FunctionChecker cannot tell. A STABLE or IMMUTABLE default is
// evaluated once by ADD COLUMN and does not rewrite the table.
var migNonVolatile = map[string]bool{
	"now": true, "transaction_timestamp": true, "statement_timestamp": true,
	"lower": true, "upper": true, "length": true, "abs": true, "round": true,
	"md5": true, "to_char": true, "make_date": true, "make_interval": true,
	"json_build_object": true, "jsonb_build_object": true,
}

// migAlterRank orders ALTER TABLE subcommand kinds from the most to the
// least harmful (data loss, rewrite, full scan, catalog only); an ALTER
// TABLE with several subcommands reports the strongest as its Kind.
var migAlterRank = map[string]int{
	"drop_column": 0, "drop_constraint": 1, "alter_column_type": 2,
	"set_not_null": 3, "add_constraint": 4, "add_column": 5,
	"validate_constraint": 6, "drop_not_null": 7, "set_default": 8,
	"drop_default": 9,
}

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

// migSequence is the literal naming a sequence in an allowed nextval call
// and the name the guard resolved it to.
type migSequence struct {
	lit          *pg.String
	schema, name string
}

// migListTarget is a table or index named by a list of strings; the last
// trim names are not part of it (the column of COMMENT ON COLUMN).
type migListTarget struct {
	list     *pg.List
	trim     int
	index    bool
	resolved string
}

func (t *migListTarget) names() []string {
	names := migStrings(t.list.GetItems())
	return names[:max(len(names)-t.trim, 0)]
}

func (c *migStmt) refuse(code, hint, format string, args ...any) *Refusal {
	r := refuse(code, hint, format, args...)
	if c.multi {
		r.Reason = fmt.Sprintf("statement %d: %s", c.index+1, r.Reason)
	}
	return r
}

func (c *migStmt) finding(code, format string, args ...any) {
	info := FindingCatalog[code]
	c.out.Findings = append(c.out.Findings, Finding{
		Code:      code,
		Level:     info.Level,
		Message:   fmt.Sprintf(format, args...),
		Fix:       info.Fix,
		Statement: c.index,
	})
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

// classify decides the statement's kinds and targets from its top-level
// node, refusing every statement type outside the closed list.
func (c *migStmt) classify(n *pg.Node) *Refusal {
	switch s := n.Node.(type) {
	case *pg.Node_CreateStmt:
		return c.classifyCreateTable(s.CreateStmt)
	case *pg.Node_AlterTableStmt:
		return c.classifyAlterTable(s.AlterTableStmt)
	case *pg.Node_DropStmt:
		return c.classifyDrop(s.DropStmt)
	case *pg.Node_RenameStmt:
		return c.classifyRename(s.RenameStmt)
	case *pg.Node_IndexStmt:
		if s.IndexStmt.Concurrent {
			return c.refuse("not_transactional", migHintConcurrently,
				"CREATE INDEX CONCURRENTLY cannot run inside a transaction block")
		}
		c.kinds = []string{"create_index"}
		c.targets[s.IndexStmt.Relation] = ""
	case *pg.Node_InsertStmt:
		c.kinds = []string{"insert"}
		c.targets[s.InsertStmt.Relation] = ""
	case *pg.Node_UpdateStmt:
		c.kinds = []string{"update"}
		c.targets[s.UpdateStmt.Relation] = ""
		c.out.HasWhere = s.UpdateStmt.WhereClause != nil
	case *pg.Node_DeleteStmt:
		c.kinds = []string{"delete"}
		c.targets[s.DeleteStmt.Relation] = ""
		c.out.HasWhere = s.DeleteStmt.WhereClause != nil
	case *pg.Node_TruncateStmt:
		if s.TruncateStmt.Behavior == pg.DropBehavior_DROP_CASCADE {
			return c.refuse("cascade", migHintCascade, "TRUNCATE ... CASCADE also truncates every table that references these")
		}
		c.kinds = []string{"truncate"}
		for _, r := range s.TruncateStmt.Relations {
			c.targets[r.GetRangeVar()] = ""
		}
	case *pg.Node_ViewStmt:
		if s.ViewStmt.View.Relpersistence == "t" {
			return c.refuse("temp_object", migHintTemp, "CREATE TEMPORARY VIEW creates a temporary object")
		}
		c.kinds = []string{"create_view"}
		c.newRel = s.ViewStmt.View
		c.targets[s.ViewStmt.View] = ""
	case *pg.Node_CommentStmt:
		return c.classifyComment(s.CommentStmt)
	case *pg.Node_DoStmt:
		c.kinds = []string{"do"}
		// PostgreSQL's default language for DO.
		c.doLanguage = "plpgsql"
		for _, n := range s.DoStmt.Args {
			d := n.GetDefElem()
			switch d.GetDefname() {
			case "language":
				c.doLanguage = d.GetArg().GetString_().GetSval()
			case "as":
				c.out.DoBody = d.GetArg().GetString_().GetSval()
			}
		}
	case *pg.Node_CallStmt:
		c.kinds = []string{"call"}
	case *pg.Node_SelectStmt:
		if s.SelectStmt.IntoClause != nil {
			return c.refuse("create_table_as", migHintCTAS, "SELECT ... INTO creates a table from a query")
		}
		return c.refuse("statement_not_allowed", "use query_readonly to read data",
			"SELECT is not a migration statement")
	case *pg.Node_CreateTableAsStmt:
		if s.CreateTableAsStmt.Objtype == pg.ObjectType_OBJECT_TABLE {
			return c.refuse("create_table_as", migHintCTAS, "CREATE TABLE ... AS creates a table from a query")
		}
		return c.notAllowed("CREATE MATERIALIZED VIEW")
	default:
		return c.classifyRefused(n)
	}
	return nil
}

const (
	migHintTx           = "airlock runs your statements in its own transaction; send only the statements"
	migHintPrivileges   = "roles, grants and ownership are managed by the database owner, not by migrations; ask a human"
	migHintSetting      = "airlock sets the session itself (role, timeouts, search path); send the statements without SET or RESET"
	migHintConcurrently = "airlock runs migrations in one transaction; drop CONCURRENTLY — the dry-run report shows the lock it would take"
	migHintOutside      = "run it yourself outside airlock after review; airlock must be able to roll back"
	migHintCodeObject   = "functions, procedures, triggers, rules and policies are not migration kinds; ask a human to manage them"
	migHintTemp         = "temporary and unlogged objects cannot be held for review (a transaction that touched them cannot be prepared); create a regular table"
	migHintCTAS         = "CREATE TABLE with explicit columns, then INSERT INTO ... SELECT"
	migHintCascade      = "CASCADE can reach objects outside the scope; drop or change the dependent objects explicitly first"
)

// classifyRefused handles every top-level statement type that is not one of
// the closed list: the ones with a reason of their own get their own code,
// every other one is statement_not_allowed.
func (c *migStmt) classifyRefused(n *pg.Node) *Refusal {
	switch s := n.Node.(type) {
	case *pg.Node_TransactionStmt:
		return c.refuse("transaction_control", migHintTx, "%s controls the transaction", migTransactionWord(s.TransactionStmt.Kind))
	case *pg.Node_CreateRoleStmt, *pg.Node_AlterRoleStmt, *pg.Node_AlterRoleSetStmt, *pg.Node_DropRoleStmt:
		return c.refuse("privileges", migHintPrivileges, "%s changes roles", migStmtName(n))
	case *pg.Node_GrantStmt, *pg.Node_GrantRoleStmt, *pg.Node_AlterDefaultPrivilegesStmt,
		*pg.Node_AlterOwnerStmt, *pg.Node_ReassignOwnedStmt, *pg.Node_DropOwnedStmt:
		return c.refuse("privileges", migHintPrivileges, "%s changes privileges or ownership", migStmtName(n))
	case *pg.Node_VariableSetStmt:
		switch s.VariableSetStmt.Name {
		case "role", "session_authorization":
			return c.refuse("privileges", migHintPrivileges, "SET/RESET %s changes the role statements run as",
				strings.ToUpper(strings.ReplaceAll(s.VariableSetStmt.Name, "_", " ")))
		}
		return c.refuse("session_setting", migHintSetting, "SET/RESET changes session or transaction settings")
	case *pg.Node_ConstraintsSetStmt:
		return c.refuse("session_setting", migHintSetting, "SET CONSTRAINTS changes transaction settings")
	case *pg.Node_AlterSystemStmt:
		return c.refuse("server_config", "server configuration is changed by an administrator, never by a migration",
			"ALTER SYSTEM changes the server configuration")
	case *pg.Node_CreatedbStmt, *pg.Node_DropdbStmt, *pg.Node_AlterDatabaseStmt,
		*pg.Node_AlterDatabaseSetStmt, *pg.Node_AlterDatabaseRefreshCollStmt:
		return c.refuse("database", "databases are managed by an administrator; a migration works inside this database",
			"%s changes databases", migStmtName(n))
	case *pg.Node_CreateTableSpaceStmt, *pg.Node_DropTableSpaceStmt,
		*pg.Node_AlterTableSpaceOptionsStmt, *pg.Node_AlterTableMoveAllStmt:
		return c.refuse("tablespace", "tablespaces are storage layout managed by an administrator",
			"%s changes tablespaces", migStmtName(n))
	case *pg.Node_CreateExtensionStmt, *pg.Node_AlterExtensionStmt, *pg.Node_AlterExtensionContentsStmt:
		return c.refuse("extension", "extensions install code that runs in the server; ask an administrator",
			"%s changes extensions", migStmtName(n))
	case *pg.Node_LoadStmt:
		return c.refuse("load", "loading a shared library into the server is never allowed",
			"LOAD loads a shared library")
	case *pg.Node_CopyStmt:
		return c.refuse("copy", "use INSERT ... VALUES for data; COPY to or from server files or PROGRAM is never allowed",
			"COPY is not allowed in a migration")
	case *pg.Node_ReindexStmt, *pg.Node_ClusterStmt, *pg.Node_CheckPointStmt, *pg.Node_DiscardStmt:
		return c.refuse("not_transactional", migHintOutside, "%s cannot be rolled back with the migration", migStmtName(n))
	case *pg.Node_VacuumStmt:
		if !s.VacuumStmt.IsVacuumcmd {
			return c.refuse("statement_not_allowed", "autovacuum keeps statistics current; run ANALYZE yourself if needed",
				"ANALYZE is not a migration statement")
		}
		return c.refuse("not_transactional", migHintOutside, "VACUUM cannot run inside a transaction block")
	case *pg.Node_ListenStmt, *pg.Node_NotifyStmt, *pg.Node_UnlistenStmt:
		return c.refuse("listen_notify", "notifications act outside the transaction and cannot be prepared; they are not available in migrations",
			"%s is not allowed in a migration", migStmtName(n))
	case *pg.Node_PrepareStmt, *pg.Node_ExecuteStmt, *pg.Node_DeallocateStmt:
		return c.refuse("prepared_statement", "send the statement itself, with literal values",
			"%s manages prepared statements", migStmtName(n))
	case *pg.Node_DeclareCursorStmt, *pg.Node_FetchStmt, *pg.Node_ClosePortalStmt:
		return c.refuse("cursor", "use query_readonly to read data",
			"%s manages cursors", migStmtName(n))
	case *pg.Node_LockStmt:
		return c.refuse("lock", "airlock takes the locks your statements need; the dry-run report shows them",
			"LOCK TABLE is not allowed in a migration")
	case *pg.Node_CreateFunctionStmt, *pg.Node_AlterFunctionStmt, *pg.Node_CreateTrigStmt,
		*pg.Node_RuleStmt, *pg.Node_CreateEventTrigStmt, *pg.Node_AlterEventTrigStmt,
		*pg.Node_CreatePolicyStmt, *pg.Node_AlterPolicyStmt, *pg.Node_CreatePlangStmt,
		*pg.Node_CreateCastStmt, *pg.Node_CreateTransformStmt:
		return c.refuse("code_object", migHintCodeObject, "%s creates or changes code that runs in the server", migStmtName(n))
	case *pg.Node_DefineStmt:
		if s.DefineStmt.Kind == pg.ObjectType_OBJECT_AGGREGATE {
			return c.refuse("code_object", migHintCodeObject, "CREATE AGGREGATE creates code that runs in the server")
		}
	case *pg.Node_SecLabelStmt:
		return c.refuse("security_label", "security labels are managed by an administrator",
			"SECURITY LABEL is not allowed in a migration")
	case *pg.Node_ExplainStmt:
		return c.refuse("statement_not_allowed", "send the statement itself to migrate_dry_run: its report shows locks and rows affected",
			"EXPLAIN is not a migration statement")
	case *pg.Node_MergeStmt:
		return c.refuse("statement_not_allowed", "write INSERT ... ON CONFLICT, UPDATE or DELETE statements instead",
			"MERGE is not a migration statement")
	}
	return c.notAllowed(migStmtName(n))
}

func (c *migStmt) notAllowed(what string) *Refusal {
	return c.refuse("statement_not_allowed", "migrations may only contain: "+joinNames(MigrationKinds),
		"%s is not an allowed statement kind", what)
}

func (c *migStmt) classifyCreateTable(s *pg.CreateStmt) *Refusal {
	switch s.Relation.Relpersistence {
	case "t":
		return c.refuse("temp_object", migHintTemp, "CREATE TEMPORARY TABLE creates a temporary object")
	case "u":
		return c.refuse("temp_object", migHintTemp, "CREATE UNLOGGED TABLE creates a table that is not crash-safe")
	}
	c.kinds = []string{"create_table"}
	c.newRel = s.Relation
	c.targets[s.Relation] = ""
	// INHERITS and PARTITION OF change the parent: it is a target too.
	for _, p := range s.InhRelations {
		c.targets[p.GetRangeVar()] = ""
	}
	for _, e := range s.TableElts {
		if cd := e.GetColumnDef(); cd != nil {
			c.allowDefaultNextval(cd)
		}
	}
	return nil
}

func (c *migStmt) classifyAlterTable(s *pg.AlterTableStmt) *Refusal {
	for _, n := range s.Cmds {
		if n.GetAlterTableCmd().GetSubtype() == pg.AlterTableType_AT_ChangeOwner {
			return c.refuse("privileges", migHintPrivileges, "ALTER ... OWNER TO changes ownership")
		}
	}
	if s.Objtype != pg.ObjectType_OBJECT_TABLE {
		return c.notAllowed("ALTER " + migObjectWord(s.Objtype))
	}
	c.targets[s.Relation] = ""
	for _, n := range s.Cmds {
		cmd := n.GetAlterTableCmd()
		kind, r := c.alterKind(cmd)
		if r != nil {
			return r
		}
		if cmd.Behavior == pg.DropBehavior_DROP_CASCADE {
			return c.refuse("cascade", migHintCascade, "ALTER TABLE ... CASCADE also drops the objects that depend on it")
		}
		if !slices.Contains(c.kinds, kind) {
			c.kinds = append(c.kinds, kind)
		}
	}
	sort.SliceStable(c.kinds, func(i, j int) bool { return migAlterRank[c.kinds[i]] < migAlterRank[c.kinds[j]] })
	return nil
}

func (c *migStmt) alterKind(cmd *pg.AlterTableCmd) (string, *Refusal) {
	switch cmd.Subtype {
	case pg.AlterTableType_AT_AddColumn:
		c.allowDefaultNextval(cmd.Def.GetColumnDef())
		return "add_column", nil
	case pg.AlterTableType_AT_DropColumn:
		return "drop_column", nil
	case pg.AlterTableType_AT_AlterColumnType:
		return "alter_column_type", nil
	case pg.AlterTableType_AT_SetNotNull:
		return "set_not_null", nil
	case pg.AlterTableType_AT_DropNotNull:
		return "drop_not_null", nil
	case pg.AlterTableType_AT_ColumnDefault:
		if cmd.Def == nil {
			return "drop_default", nil
		}
		c.allowNextval(cmd.Def)
		return "set_default", nil
	case pg.AlterTableType_AT_AddConstraint:
		return "add_constraint", nil
	case pg.AlterTableType_AT_DropConstraint:
		return "drop_constraint", nil
	case pg.AlterTableType_AT_ValidateConstraint:
		return "validate_constraint", nil
	case pg.AlterTableType_AT_DetachPartition:
		if cmd.Def.GetPartitionCmd().GetConcurrent() {
			return "", c.refuse("not_transactional", migHintConcurrently,
				"DETACH PARTITION CONCURRENTLY cannot run inside a transaction block")
		}
	}
	return "", c.notAllowed("ALTER TABLE ... " + strings.TrimPrefix(cmd.Subtype.String(), "AT_"))
}

// allowDefaultNextval lets nextval appear in a new column's DEFAULT: serial
// and identity-like defaults are ordinary schema design.
func (c *migStmt) allowDefaultNextval(cd *pg.ColumnDef) {
	if cd == nil {
		return
	}
	c.allowNextval(cd.RawDefault)
	for _, n := range cd.Constraints {
		if con := n.GetConstraint(); con.GetContype() == pg.ConstrType_CONSTR_DEFAULT {
			c.allowNextval(con.RawExpr)
		}
	}
}

func (c *migStmt) allowNextval(expr *pg.Node) {
	if expr == nil {
		return
	}
	var k migWalk
	k.node(expr.ProtoReflect(), nil)
	for _, f := range k.funcs {
		schema, name, _ := migFuncName(f)
		if name == "nextval" && (schema == "" || schema == "pg_catalog") {
			c.nextval[f] = true
		}
	}
}

func (c *migStmt) classifyDrop(s *pg.DropStmt) *Refusal {
	var kind string
	index := false
	switch s.RemoveType {
	case pg.ObjectType_OBJECT_TABLE:
		kind = "drop_table"
	case pg.ObjectType_OBJECT_VIEW:
		kind = "drop_view"
	case pg.ObjectType_OBJECT_INDEX:
		if s.Concurrent {
			return c.refuse("not_transactional", migHintConcurrently,
				"DROP INDEX CONCURRENTLY cannot run inside a transaction block")
		}
		kind, index = "drop_index", true
	case pg.ObjectType_OBJECT_FUNCTION, pg.ObjectType_OBJECT_PROCEDURE, pg.ObjectType_OBJECT_ROUTINE,
		pg.ObjectType_OBJECT_TRIGGER, pg.ObjectType_OBJECT_RULE, pg.ObjectType_OBJECT_EVENT_TRIGGER,
		pg.ObjectType_OBJECT_POLICY, pg.ObjectType_OBJECT_AGGREGATE, pg.ObjectType_OBJECT_LANGUAGE,
		pg.ObjectType_OBJECT_CAST, pg.ObjectType_OBJECT_TRANSFORM:
		return c.refuse("code_object", migHintCodeObject, "DROP %s drops code that runs in the server", migObjectWord(s.RemoveType))
	case pg.ObjectType_OBJECT_EXTENSION:
		return c.refuse("extension", "extensions install code that runs in the server; ask an administrator",
			"DROP EXTENSION changes extensions")
	default:
		return c.notAllowed("DROP " + migObjectWord(s.RemoveType))
	}
	if s.Behavior == pg.DropBehavior_DROP_CASCADE {
		return c.refuse("cascade", migHintCascade, "DROP ... CASCADE also drops the objects that depend on it")
	}
	c.kinds = []string{kind}
	for _, o := range s.Objects {
		c.listTargets = append(c.listTargets, &migListTarget{list: o.GetList(), index: index})
	}
	return nil
}

func (c *migStmt) classifyRename(s *pg.RenameStmt) *Refusal {
	switch s.RenameType {
	case pg.ObjectType_OBJECT_TABLE, pg.ObjectType_OBJECT_VIEW, pg.ObjectType_OBJECT_COLUMN,
		pg.ObjectType_OBJECT_TABCONSTRAINT:
		c.targets[s.Relation] = ""
	case pg.ObjectType_OBJECT_INDEX:
		c.indexRels = append(c.indexRels, s.Relation)
		c.targets[s.Relation] = ""
	case pg.ObjectType_OBJECT_DATABASE:
		return c.refuse("database", "databases are managed by an administrator", "ALTER DATABASE ... RENAME changes databases")
	case pg.ObjectType_OBJECT_TABLESPACE:
		return c.refuse("tablespace", "tablespaces are managed by an administrator", "ALTER TABLESPACE ... RENAME changes tablespaces")
	case pg.ObjectType_OBJECT_ROLE:
		return c.refuse("privileges", migHintPrivileges, "ALTER ROLE ... RENAME changes roles")
	case pg.ObjectType_OBJECT_FUNCTION, pg.ObjectType_OBJECT_PROCEDURE, pg.ObjectType_OBJECT_ROUTINE,
		pg.ObjectType_OBJECT_TRIGGER, pg.ObjectType_OBJECT_RULE, pg.ObjectType_OBJECT_EVENT_TRIGGER,
		pg.ObjectType_OBJECT_POLICY, pg.ObjectType_OBJECT_AGGREGATE, pg.ObjectType_OBJECT_LANGUAGE:
		return c.refuse("code_object", migHintCodeObject, "ALTER %s ... RENAME changes code objects", migObjectWord(s.RenameType))
	default:
		return c.notAllowed("ALTER " + migObjectWord(s.RenameType) + " ... RENAME")
	}
	if s.Behavior == pg.DropBehavior_DROP_CASCADE {
		return c.refuse("cascade", migHintCascade, "RENAME ... CASCADE reaches dependent objects")
	}
	c.kinds = []string{"rename"}
	return nil
}

func (c *migStmt) classifyComment(s *pg.CommentStmt) *Refusal {
	target := &migListTarget{list: s.Object.GetList()}
	switch s.Objtype {
	case pg.ObjectType_OBJECT_TABLE, pg.ObjectType_OBJECT_VIEW:
	case pg.ObjectType_OBJECT_INDEX:
		target.index = true
	case pg.ObjectType_OBJECT_COLUMN, pg.ObjectType_OBJECT_TABCONSTRAINT:
		// The last name is the column or constraint; the rest is the table.
		target.trim = 1
	default:
		return c.notAllowed("COMMENT ON " + migObjectWord(s.Objtype))
	}
	if len(target.names()) == 0 {
		return c.notAllowed("COMMENT ON " + migObjectWord(s.Objtype))
	}
	c.listTargets = append(c.listTargets, target)
	c.kinds = []string{"comment"}
	return nil
}

// checkKinds requires every kind of the statement to be allowed and sets
// Kind to the strongest.
func (c *migStmt) checkKinds() *Refusal {
	for _, k := range c.kinds {
		if c.w.Allow[k] {
			continue
		}
		hint := "this scope allows: " + joinNames(migSortedKeys(c.w.Allow))
		if len(migSortedKeys(c.w.Allow)) == 0 {
			hint = "this scope allows no statement kinds"
		}
		switch k {
		case "do", "call":
			return c.refuse("kind_not_allowed", "write the statements as plain SQL; "+hint,
				"%s runs procedural code airlock cannot inspect, and this scope does not allow kind %q", strings.ToUpper(k), k)
		}
		return c.refuse("kind_not_allowed", hint, "statement kind %q is not allowed by this scope", k)
	}
	c.out.Kind = c.kinds[0]
	c.out.Kinds = slices.Clone(c.kinds)
	return nil
}

func (c *migStmt) searchPath() []string {
	if len(c.read.SearchPath) > 0 {
		return c.read.SearchPath
	}
	return []string{"public"}
}

// resolve qualifies a relation name: a new object goes to the first schema
// of the search path, an existing one to the first schema where known()
// holds (or the first schema, so that the refusal names something).
func (c *migStmt) resolve(schema, name string, known func(string) bool) string {
	if schema != "" {
		return schema + "." + name
	}
	path := c.searchPath()
	if known != nil {
		for _, s := range path {
			if known(s + "." + name) {
				return s + "." + name
			}
		}
	}
	return path[0] + "." + name
}

func (c *migStmt) writable(q string) bool { return c.w.Tables[q] }

func (c *migStmt) readable(q string) bool { return c.w.Tables[q] || c.read.Tables[q] != nil }

func (c *migStmt) crossDatabase(name string) *Refusal {
	return c.refuse("cross_database", "name tables as schema.table in the current database",
		"%s names another database", name)
}

// checkTargets resolves every target and requires it to be writable.
func (c *migStmt) checkTargets() *Refusal {
	add := func(q string) {
		if !slices.Contains(c.out.Targets, q) {
			c.out.Targets = append(c.out.Targets, q)
		}
	}
	// Walk order keeps Targets in the order the statement names them.
	for _, ref := range c.walk.rangeVars {
		rv := ref.rv
		if _, ok := c.targets[rv]; !ok {
			continue
		}
		if rv.Catalogname != "" {
			return c.crossDatabase(rv.Catalogname + "." + rv.Schemaname + "." + rv.Relname)
		}
		if slices.Contains(c.indexRels, rv) {
			q := c.resolve(rv.Schemaname, rv.Relname, nil)
			c.targets[rv] = q
			add(q)
			c.out.IndexTargets = append(c.out.IndexTargets, q)
			continue
		}
		var q string
		if rv == c.newRel {
			q = c.resolve(rv.Schemaname, rv.Relname, nil)
		} else {
			q = c.resolve(rv.Schemaname, rv.Relname, c.writable)
		}
		c.targets[rv] = q
		if !c.writable(q) {
			verb := migKindVerb(c.kinds[0])
			if c.newRel != nil && rv != c.newRel {
				verb = "the new table attaches to" // INHERITS, PARTITION OF
			}
			return c.notWritable(verb, q)
		}
		add(q)
	}
	for _, t := range c.listTargets {
		names := t.names()
		var schema, name string
		switch len(names) {
		case 1:
			name = names[0]
		case 2:
			schema, name = names[0], names[1]
		default:
			return c.crossDatabase(strings.Join(names, "."))
		}
		if t.index {
			t.resolved = c.resolve(schema, name, nil)
			add(t.resolved)
			c.out.IndexTargets = append(c.out.IndexTargets, t.resolved)
			continue
		}
		t.resolved = c.resolve(schema, name, c.writable)
		if !c.writable(t.resolved) {
			return c.notWritable(migKindVerb(c.kinds[0]), t.resolved)
		}
		add(t.resolved)
	}
	return nil
}

func (c *migStmt) notWritable(verb, q string) *Refusal {
	hint := "writable tables: " + joinNames(migSortedKeys(c.w.Tables))
	if len(c.w.Tables) == 0 {
		hint = "this scope has no writable tables"
	}
	return c.refuse("table_not_writable", hint, "%s %s, which is not a writable table", verb, q)
}

// checkReads requires every relation that is not a target or a CTE to be
// writable or readable.
func (c *migStmt) checkReads() *Refusal {
	for _, ref := range c.walk.rangeVars {
		rv := ref.rv
		if _, ok := c.targets[rv]; ok || ref.cte {
			continue
		}
		if rv.Catalogname != "" {
			return c.crossDatabase(rv.Catalogname + "." + rv.Schemaname + "." + rv.Relname)
		}
		q := c.resolve(rv.Schemaname, rv.Relname, c.readable)
		if !c.readable(q) {
			names := migSortedKeys(c.w.Tables)
			for t := range c.read.Tables {
				if !c.w.Tables[t] {
					names = append(names, t)
				}
			}
			sort.Strings(names)
			return c.refuse("table_not_in_scope", "tables a migration may read: "+joinNames(names),
				"the statement reads %s, which is not in scope", q)
		}
		c.reads[rv] = q
		if !slices.Contains(c.out.Reads, q) && !slices.Contains(c.out.Targets, q) {
			c.out.Reads = append(c.out.Reads, q)
		}
	}
	return nil
}

// relationName is the resolved name of a non-CTE RangeVar, target or read.
func (c *migStmt) relationName(rv *pg.RangeVar) string {
	if q, ok := c.targets[rv]; ok {
		return q
	}
	return c.reads[rv]
}

// checkFunctions sends every function call to the read policy's checker.
func (c *migStmt) checkFunctions() *Refusal {
	for _, f := range c.walk.funcs {
		if c.nextval[f] {
			continue
		}
		schema, name, ok := migFuncName(f)
		if !ok {
			return c.crossDatabase(strings.Join(migStrings(f.Funcname), "."))
		}
		if c.read.Functions == nil {
			return c.refuse("function_not_allowed", "this scope allows no function calls; use literal values",
				"function %s is not allowed", migQualify(schema, name))
		}
		if r := checkCallArgs(c.read.Functions, schema, name, f.Args); r != nil {
			out := *r
			if c.multi {
				out.Reason = fmt.Sprintf("statement %d: %s", c.index+1, out.Reason)
			}
			return &out
		}
	}
	return nil
}

// migHintNextval is the hint of every refused nextval in a DEFAULT.
const migHintNextval = "name the sequence of a writable table's serial or identity column as a string literal: DEFAULT nextval('orders_id_seq')"

// checkNextval requires every nextval a column DEFAULT may call to take one
// string literal (optionally cast to regclass) naming a sequence, and
// lists the sequence, resolved, in Sequences: the parse tree cannot tell
// whether a writable table owns it, the caller checks that against the
// catalog. A DEFAULT that advances a sequence outside the scope would make
// every later insert write to it, and the agent can read its value back.
func (c *migStmt) checkNextval() *Refusal {
	for _, f := range c.walk.funcs {
		if !c.nextval[f] {
			continue
		}
		lit, cast := migNextvalArg(f)
		if lit == nil {
			return c.refuse("function_not_allowed", migHintNextval,
				"nextval in a column DEFAULT must name one sequence as a string literal")
		}
		schema, name, ok := migSequenceName(lit.Sval)
		if !ok {
			return c.refuse("function_not_allowed", migHintNextval,
				"nextval('%s') in a column DEFAULT does not name one sequence as schema.sequence", lit.Sval)
		}
		if schema == "" {
			schema = c.searchPath()[0]
		}
		if cast != nil {
			c.exempt[cast] = true
		}
		c.sequences = append(c.sequences, migSequence{lit: lit, schema: schema, name: name})
		if q := schema + "." + name; !slices.Contains(c.out.Sequences, q) {
			c.out.Sequences = append(c.out.Sequences, q)
		}
	}
	return nil
}

// migNextvalArg returns the literal of nextval('seq') or
// nextval('seq'::regclass) and the regclass cast, if any; lit is nil for
// any other call.
func migNextvalArg(f *pg.FuncCall) (lit *pg.String, cast *pg.TypeName) {
	if len(f.Args) != 1 || f.AggStar || f.AggDistinct || f.FuncVariadic || f.AggWithinGroup ||
		f.Over != nil || f.AggFilter != nil || len(f.AggOrder) > 0 {
		return nil, nil
	}
	arg := f.Args[0]
	if tc := arg.GetTypeCast(); tc != nil {
		t := tc.TypeName
		names := migStrings(t.GetNames())
		if len(names) != len(t.GetNames()) || !slices.Equal(names, []string{"regclass"}) && !slices.Equal(names, []string{"pg_catalog", "regclass"}) ||
			len(t.Typmods) > 0 || len(t.ArrayBounds) > 0 || t.Setof || t.PctType {
			return nil, nil
		}
		cast, arg = t, tc.Arg
	}
	k := arg.GetAConst()
	if k == nil || k.Isnull || k.GetSval() == nil {
		return nil, nil
	}
	return k.GetSval(), cast
}

// migSequenceName reads a regclass literal as a relation name with the
// real parser: it must be exactly one [schema.]name, nothing else. Names
// holding a dot are refused so that "schema.name" stays unambiguous for
// the caller. The guard renders the name it read quoted (qualifyCode), so
// PostgreSQL looks up exactly this name whatever the text's quirks.
func migSequenceName(text string) (schema, name string, ok bool) {
	tree, err := pg.Parse("SELECT FROM " + text)
	if err != nil || len(tree.Stmts) != 1 {
		return "", "", false
	}
	got := tree.Stmts[0].Stmt
	rv := got.GetSelectStmt().GetFromClause()
	if len(rv) != 1 || rv[0].GetRangeVar() == nil {
		return "", "", false
	}
	schema, name = rv[0].GetRangeVar().Schemaname, rv[0].GetRangeVar().Relname
	want := &pg.Node{Node: &pg.Node_SelectStmt{SelectStmt: &pg.SelectStmt{
		FromClause: []*pg.Node{{Node: &pg.Node_RangeVar{RangeVar: &pg.RangeVar{
			Schemaname: schema, Relname: name, Inh: true, Relpersistence: "p",
		}}}},
		LimitOption: pg.LimitOption_LIMIT_OPTION_DEFAULT,
		Op:          pg.SetOperation_SETOP_NONE,
	}}}
	if !migSameTree(got, want) || strings.Contains(schema, ".") || strings.Contains(name, ".") {
		return "", "", false
	}
	return schema, name, true
}

// scopeSchemas are the schemas a type or operator class may be qualified
// with: pg_catalog, the search path and the schemas of the scope's tables.
func (c *migStmt) scopeSchemas() []string {
	set := map[string]bool{"pg_catalog": true}
	for _, s := range c.searchPath() {
		set[s] = true
	}
	for t := range c.w.Tables {
		set[strings.SplitN(t, ".", 2)[0]] = true
	}
	for _, t := range c.read.Tables {
		set[t.Schema] = true
	}
	return migSortedKeys(set)
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

// checkNames applies the read path's rules on types, operators and
// collations to every one the statement names, wherever it is: a cast in
// an UPDATE, a column type, a CHECK, an index expression, a view body.
// Object identifier types look up any name given as text (an existence
// oracle for objects outside the scope: 'public.secrets'::regclass), and as
// a column type turn every later insert of a literal into such a lookup;
// xml input runs the XML parser. docs/architecture.md, Write statements:
// the read rules everywhere.
func (c *migStmt) checkNames() *Refusal {
	if len(c.walk.xml) > 0 {
		return c.refuse("function_not_allowed", "use the json and jsonb functions instead",
			"XML expressions (%s) are not allowed: they run the XML parser", strings.ToUpper(c.walk.xml[0]))
	}
	schemas := c.scopeSchemas()
	for _, t := range c.walk.typeNames {
		if c.exempt[t] {
			continue
		}
		if r := c.checkType(t, schemas); r != nil {
			return r
		}
	}
	for _, e := range c.walk.aExprs {
		if r := readOperator(e.Name); r != nil {
			return c.wrap(r)
		}
	}
	for _, l := range c.walk.subLinks {
		if r := readOperator(l.OperName); r != nil {
			return c.wrap(r)
		}
	}
	for _, sb := range c.walk.sortBys {
		if r := readOperator(sb.UseOp); r != nil {
			return c.wrap(r)
		}
	}
	for _, con := range c.walk.constraints {
		for _, ops := range migExclusionOps(con) {
			if r := readOperator(ops.Items); r != nil {
				return c.wrap(r)
			}
		}
	}
	for _, cc := range c.walk.collates {
		if r := readCollation(cc.Collname); r != nil {
			return c.wrap(r)
		}
	}
	for _, ie := range c.walk.indexElems {
		if r := readCollation(ie.Collation); r != nil {
			return c.wrap(r)
		}
		// Operator classes resolve through the search path like types;
		// one in a schema outside the scope runs code outside it.
		names := migStrings(ie.Opclass)
		if len(names) != len(ie.Opclass) || len(names) > 2 || len(names) == 2 && !slices.Contains(schemas, names[0]) {
			return c.refuse("opclass_not_allowed", "use operator classes of pg_catalog or of the scope's schemas: "+joinNames(schemas),
				"operator class %s is not allowed", strings.Join(names, "."))
		}
	}
	return nil
}

// checkType is the read path's type rule (readRefusedTypes) with one
// difference: a type may be qualified with any of the scope's schemas, not
// only pg_catalog, since migrations create columns of the scope's own
// enums and domains. Unqualified types resolve with pg_catalog first.
func (c *migStmt) checkType(t *pg.TypeName, schemas []string) *Refusal {
	names := migStrings(t.Names)
	written := strings.Join(names, ".")
	hint := "use built-in types (unqualified or pg_catalog.) or types of the scope's schemas: " + joinNames(schemas)
	switch {
	case t.PctType:
		return c.refuse("type_not_allowed", hint, "%s%%TYPE is not allowed", written)
	case len(names) != len(t.Names) || len(names) == 0 || len(names) > 2:
		return c.refuse("type_not_allowed", hint, "type %s is not allowed", written)
	case len(names) == 2 && !slices.Contains(schemas, names[0]):
		return c.refuse("type_not_allowed", hint, "type %s is not allowed: %s is not one of the scope's schemas", written, names[0])
	}
	base := names[len(names)-1]
	if !readRefusedTypes[base] {
		return nil
	}
	why := "its input looks up objects by name"
	if base == "xml" || base == "_xml" {
		why = "its input runs the XML parser"
	}
	return c.refuse("type_not_allowed", "use built-in types other than xml and the object identifier types (regclass, regproc, ...)",
		"type %s is not allowed: %s", written, why)
}

// migLikeExpressions are the LIKE options that copy expressions of the
// source table (CREATE_TABLE_LIKE_CONSTRAINTS, _DEFAULTS, _GENERATED,
// _INDEXES, _STATISTICS in PostgreSQL's parsenodes.h).
const migLikeExpressions = 1<<2 | 1<<3 | 1<<4 | 1<<6 | 1<<7

// migLikeAll is CREATE_TABLE_LIKE_ALL and migLikeKnown every option bit
// PostgreSQL defines (COMMENTS through STORAGE).
const (
	migLikeAll   = 1<<31 - 1
	migLikeKnown = 1<<9 - 1
)

// checkLikes bounds CREATE TABLE ... (LIKE source): it copies the name and
// type of every column of the source, and with INCLUDING DEFAULTS,
// CONSTRAINTS, GENERATED, INDEXES or STATISTICS the expressions in them,
// none of which is in the statement for the guard to check. A source with
// restricted columns is refused; expressions may only come from a
// writable table.
func (c *migStmt) checkLikes() *Refusal {
	for _, l := range c.walk.likes {
		q := c.relationName(l.Relation)
		if t := c.read.Tables[q]; t != nil && migRestricted(t) {
			return c.refuse("like_not_allowed", "list the new table's columns: "+joinNames(t.AllowedColumns()),
				"LIKE %s would copy the definitions of its restricted columns", q)
		}
		if l.Options&migLikeExpressions != 0 && !c.writable(q) {
			return c.refuse("like_not_allowed", "copy only the columns (LIKE without INCLUDING DEFAULTS, CONSTRAINTS, GENERATED, INDEXES or STATISTICS), or write the expressions out",
				"LIKE %s would copy expressions of a table that is not writable", q)
		}
	}
	return nil
}

// recordColumns notes the columns the statement creates, adds or renames
// to, before the checks that look for them: they are columns of their
// table for this statement and the ones after it.
func (c *migStmt) recordColumns() *Refusal {
	add := func(table, col string) {
		if table != "" {
			c.newColumns[table+"."+col] = true
		}
	}
	switch s := c.raw.Stmt.Node.(type) {
	case *pg.Node_CreateStmt:
		for _, e := range s.CreateStmt.TableElts {
			if cd := e.GetColumnDef(); cd != nil {
				add(c.targets[s.CreateStmt.Relation], cd.Colname)
			}
		}
	case *pg.Node_AlterTableStmt:
		for _, n := range s.AlterTableStmt.Cmds {
			if cd := n.GetAlterTableCmd().GetDef().GetColumnDef(); cd != nil && n.GetAlterTableCmd().Subtype == pg.AlterTableType_AT_AddColumn {
				add(c.targets[s.AlterTableStmt.Relation], cd.Colname)
			}
		}
	case *pg.Node_RenameStmt:
		if s.RenameStmt.RenameType == pg.ObjectType_OBJECT_COLUMN {
			add(c.targets[s.RenameStmt.Relation], s.RenameStmt.Newname)
		}
	}
	return nil
}

// checkFieldNotation refuses t.f and (t).f where t is a row of a table whose
// columns the guard knows and f is none of them, and (ROW(...)).f:
// PostgreSQL reads those as the call f(t), with f looked up through the
// search path, which no FunctionChecker and no qualification sees.
func (c *migStmt) checkFieldNotation() *Refusal {
	known := map[string][]*Table{}
	for _, ref := range c.walk.rangeVars {
		rv := ref.rv
		if ref.cte || rv == c.newRel || slices.Contains(c.walk.noNamespace, rv) {
			continue
		}
		q := c.relationName(rv)
		t := c.read.Tables[q]
		if t == nil {
			continue
		}
		if rv.Alias != nil {
			known[rv.Alias.Aliasname] = append(known[rv.Alias.Aliasname], t)
			continue
		}
		known[rv.Relname] = append(known[rv.Relname], t)
		known[q] = append(known[q], t)
	}
	field := func(qual []string, f string) *Refusal {
		for _, t := range known[strings.Join(qual, ".")] {
			if t.Column(f) != nil || readSystemColumns[f] || c.newColumns[t.QualifiedName()+"."+f] {
				continue
			}
			return c.refuse("column_not_allowed", "columns of "+t.QualifiedName()+": "+joinNames(t.AllowedColumns()),
				"%s has no column %s: %s.%s would call a function %s(%s)", t.QualifiedName(), f, strings.Join(qual, "."), f, f, strings.Join(qual, "."))
		}
		return nil
	}
	for _, ref := range c.walk.columns {
		names := migStrings(ref.Fields)
		if len(names) != len(ref.Fields) || len(names) < 2 {
			continue
		}
		if r := field(names[:len(names)-1], names[len(names)-1]); r != nil {
			return r
		}
	}
	for _, ind := range c.walk.indirections {
		if len(ind.Indirection) == 0 || ind.Indirection[0].GetString_() == nil {
			continue
		}
		f := ind.Indirection[0].GetString_().Sval
		if ind.Arg.GetRowExpr() != nil {
			return c.refuse("function_not_allowed", "select the value itself instead of a field of ROW(...)",
				"(ROW(...)).%s would call a function %s(record) looked up through the search path", f, f)
		}
		cr := ind.Arg.GetColumnRef()
		if cr == nil {
			continue
		}
		names := migStrings(cr.Fields)
		switch {
		case len(cr.Fields) == 1 && len(names) == 1:
		case len(cr.Fields) == 2 && len(names) == 1 && cr.Fields[1].GetAStar() != nil:
		default:
			continue // a field of a column: a composite value, not a row
		}
		if r := field(names, f); r != nil {
			return r
		}
	}
	return nil
}

// checkDo lets DO run PL/pgSQL only, and only a body pg_query's PL/pgSQL
// parser accepts: another language is code airlock cannot even parse.
func (c *migStmt) checkDo() *Refusal {
	if _, ok := c.raw.Stmt.Node.(*pg.Node_DoStmt); !ok {
		return nil
	}
	if c.doLanguage != "plpgsql" {
		return c.refuse("code_object", "write the block in LANGUAGE plpgsql, or the statements as plain SQL",
			"DO LANGUAGE %s runs code airlock cannot parse; only plpgsql is allowed", c.doLanguage)
	}
	if _, err := pg.ParsePlPgSqlToJSON(c.out.SQL); err != nil {
		return c.refuse("syntax_error", "fix the PL/pgSQL block",
			"the DO block does not parse: %v", err)
	}
	return nil
}

// migGuarded is a table with a read rule that denies or masks columns,
// with the names a column reference may qualify it by.
type migGuarded struct {
	table *Table
	names []string
}

// checkColumns applies the read rules to every column reference; see
// CheckMigration for the (conservative) rules.
func (c *migStmt) checkColumns() *Refusal {
	guarded := c.guardedTables()
	for _, con := range c.walk.constraints {
		if r := c.checkForeignKey(con); r != nil {
			return r
		}
	}
	if len(guarded) == 0 {
		return nil
	}
	for _, ref := range c.walk.columns {
		if r := c.checkColumnRef(ref, guarded); r != nil {
			return r
		}
	}
	for _, j := range c.walk.joins {
		if j.IsNatural {
			return c.refuse("column_not_allowed", "join with ON and name the allowed columns",
				"NATURAL JOIN compares every same-named column, including restricted ones of %s", guarded[0].table.QualifiedName())
		}
		for _, name := range migStrings(j.UsingClause) {
			for _, g := range guarded {
				if r := c.checkColumn(g.table, name); r != nil {
					return r
				}
			}
		}
	}
	return nil
}

func (c *migStmt) guardedTables() []migGuarded {
	var out []migGuarded
	seen := map[*pg.RangeVar]bool{}
	for _, ref := range c.walk.rangeVars {
		rv := ref.rv
		_, target := c.targets[rv]
		if ref.cte && !target || seen[rv] || slices.Contains(c.walk.noNamespace, rv) {
			continue
		}
		seen[rv] = true
		t := c.read.Tables[c.relationName(rv)]
		if t == nil || !migRestricted(t) {
			continue
		}
		names := []string{rv.Relname, t.QualifiedName()}
		if rv.Alias != nil {
			names = append(names, rv.Alias.Aliasname)
		}
		out = append(out, migGuarded{table: t, names: names})
	}
	return out
}

func migRestricted(t *Table) bool {
	if t.Restricted {
		return true
	}
	for _, col := range t.Columns {
		if col.Access != Allowed {
			return true
		}
	}
	return false
}

func (c *migStmt) checkColumnRef(ref *pg.ColumnRef, guarded []migGuarded) *Refusal {
	var names []string
	star := false
	for _, f := range ref.Fields {
		switch {
		case f.GetString_() != nil:
			names = append(names, f.GetString_().Sval)
		case f.GetAStar() != nil:
			star = true
		}
	}
	match := func(qual []string) *migGuarded {
		if len(qual) == 0 {
			return nil
		}
		key := strings.Join(qual, ".")
		for i := range guarded {
			if slices.Contains(guarded[i].names, key) {
				return &guarded[i]
			}
		}
		return nil
	}
	if star {
		if len(names) == 0 {
			return c.refuse("column_not_allowed", "name the allowed columns instead of *: "+joinNames(guarded[0].table.AllowedColumns()),
				"* would include restricted columns of %s", guarded[0].table.QualifiedName())
		}
		if g := match(names); g != nil {
			return c.refuse("column_not_allowed", "name the allowed columns instead of *: "+joinNames(g.table.AllowedColumns()),
				"%s.* would include restricted columns of %s", strings.Join(names, "."), g.table.QualifiedName())
		}
		return nil
	}
	if len(names) == 1 {
		if g := match(names); g != nil {
			return c.refuse("column_not_allowed", "name the allowed columns: "+joinNames(g.table.AllowedColumns()),
				"%s refers to whole rows of %s, including restricted columns", names[0], g.table.QualifiedName())
		}
		for _, g := range guarded {
			if r := c.checkColumn(g.table, names[0]); r != nil {
				return r
			}
		}
		return nil
	}
	if g := match(names[:len(names)-1]); g != nil {
		col := names[len(names)-1]
		if g.table.Column(col) == nil {
			return c.refuse("column_not_allowed", "allowed columns: "+joinNames(g.table.AllowedColumns()),
				"%s has no column %s in scope", g.table.QualifiedName(), col)
		}
		return c.checkColumn(g.table, col)
	}
	return nil
}

func (c *migStmt) checkColumn(t *Table, name string) *Refusal {
	col := t.Column(name)
	if col == nil || col.Access == Allowed {
		return nil
	}
	hint := "allowed columns of " + t.QualifiedName() + ": " + joinNames(t.AllowedColumns())
	if col.Access == Masked {
		return c.refuse("column_not_allowed", hint,
			"%s.%s is masked: a migration would copy or compare its real value", t.QualifiedName(), name)
	}
	return c.refuse("column_not_allowed", hint, "%s.%s is not in scope", t.QualifiedName(), name)
}

// checkForeignKey applies the read rules to the columns a FOREIGN KEY
// references: inserting into the referencing table would test values
// against them.
func (c *migStmt) checkForeignKey(con *pg.Constraint) *Refusal {
	if con.Contype != pg.ConstrType_CONSTR_FOREIGN || con.Pktable == nil {
		return nil
	}
	t := c.read.Tables[c.relationName(con.Pktable)]
	if t == nil || !migRestricted(t) {
		return nil
	}
	cols := migStrings(con.PkAttrs)
	if len(cols) == 0 {
		return c.refuse("column_not_allowed", "name the referenced columns: REFERENCES "+t.QualifiedName()+" (column)",
			"a foreign key to %s must name the columns it references", t.QualifiedName())
	}
	for _, name := range cols {
		if t.Column(name) == nil {
			return c.refuse("column_not_allowed", "allowed columns: "+joinNames(t.AllowedColumns()),
				"%s has no column %s in scope", t.QualifiedName(), name)
		}
		if r := c.checkColumn(t, name); r != nil {
			return r
		}
	}
	return nil
}

// findings adds the parse-tree findings of the statement.
func (c *migStmt) findings() {
	switch s := c.raw.Stmt.Node.(type) {
	case *pg.Node_DropStmt:
		if s.DropStmt.RemoveType == pg.ObjectType_OBJECT_TABLE {
			for _, t := range c.out.Targets {
				c.finding("DS102", "data loss: drops table %s", t)
			}
		}
	case *pg.Node_TruncateStmt:
		for _, t := range c.out.Targets {
			c.finding("DS104", "data loss: removes every row of %s", t)
		}
	case *pg.Node_DeleteStmt:
		if !c.out.HasWhere {
			c.finding("DL101", "DELETE without WHERE removes every row of %s", c.out.Targets[0])
		}
	case *pg.Node_UpdateStmt:
		if !c.out.HasWhere {
			c.finding("DL102", "UPDATE without WHERE changes every row of %s", c.out.Targets[0])
		}
	case *pg.Node_RenameStmt:
		table := c.targets[s.RenameStmt.Relation]
		switch s.RenameStmt.RenameType {
		case pg.ObjectType_OBJECT_TABLE, pg.ObjectType_OBJECT_VIEW:
			c.finding("BC101", "renames %s to %s: code using the old name breaks", table, s.RenameStmt.Newname)
		case pg.ObjectType_OBJECT_COLUMN:
			c.finding("BC102", "renames column %s.%s to %s: code using the old name breaks", table, s.RenameStmt.Subname, s.RenameStmt.Newname)
		}
	case *pg.Node_IndexStmt:
		c.finding("PG101", "CREATE INDEX on %s blocks writes to it (SHARE lock) while the index builds", c.out.Targets[0])
	case *pg.Node_AlterTableStmt:
		table := c.targets[s.AlterTableStmt.Relation]
		for _, n := range s.AlterTableStmt.Cmds {
			c.alterFindings(table, n.GetAlterTableCmd())
		}
	case *pg.Node_DoStmt, *pg.Node_CallStmt:
		c.finding("CD101", "%s runs procedural code: its tables, functions and effects were not checked", strings.ToUpper(c.out.Kind))
	}
}

func (c *migStmt) alterFindings(table string, cmd *pg.AlterTableCmd) {
	switch cmd.Subtype {
	case pg.AlterTableType_AT_DropColumn:
		c.finding("DS103", "data loss: drops column %s.%s", table, cmd.Name)
	case pg.AlterTableType_AT_SetNotNull:
		c.finding("MF104", "SET NOT NULL on %s.%s scans the whole table under ACCESS EXCLUSIVE", table, cmd.Name)
	case pg.AlterTableType_AT_AlterColumnType:
		c.finding("PG301", "changing the type of %s.%s may rewrite the table under ACCESS EXCLUSIVE; narrowing loses data", table, cmd.Name)
	case pg.AlterTableType_AT_AddColumn:
		c.addColumnFindings(table, cmd.Def.GetColumnDef())
	case pg.AlterTableType_AT_AddConstraint:
		con := cmd.Def.GetConstraint()
		switch con.GetContype() {
		case pg.ConstrType_CONSTR_CHECK, pg.ConstrType_CONSTR_FOREIGN:
			if con.SkipValidation {
				c.out.NotValid = true
				return
			}
			c.finding("PG305", "adding %s checks every existing row of %s while holding its lock",
				migConstraintName(con), table)
		case pg.ConstrType_CONSTR_UNIQUE, pg.ConstrType_CONSTR_PRIMARY, pg.ConstrType_CONSTR_EXCLUSION:
			if con.Indexname != "" {
				return
			}
			c.finding("PG305", "adding %s builds an index on %s under ACCESS EXCLUSIVE",
				migConstraintName(con), table)
		}
	}
}

func (c *migStmt) addColumnFindings(table string, cd *pg.ColumnDef) {
	if cd == nil {
		return
	}
	col := table + "." + cd.Colname
	notNull := cd.IsNotNull
	deflt := cd.RawDefault
	generated := ""
	for _, n := range cd.Constraints {
		con := n.GetConstraint()
		switch con.GetContype() {
		case pg.ConstrType_CONSTR_NOTNULL, pg.ConstrType_CONSTR_PRIMARY:
			notNull = true
		case pg.ConstrType_CONSTR_DEFAULT:
			deflt = con.RawExpr
		case pg.ConstrType_CONSTR_IDENTITY:
			generated = "an identity column"
		case pg.ConstrType_CONSTR_GENERATED:
			generated = "a stored generated column"
		}
	}
	if generated == "" && migIsSerial(cd.TypeName) {
		generated = "a serial column"
	}
	switch {
	case generated != "":
		c.finding("PG302", "adding %s %s fills every existing row and rewrites %s", generated, col, table)
	case deflt != nil:
		if f, known := c.volatileCall(deflt); f != "" {
			what := "is volatile"
			if !known {
				what = "is not known to be non-volatile"
			}
			c.finding("PG302", "the default of %s calls %s, which %s: every existing row is written and %s rewritten", col, f, what, table)
		}
	case notNull:
		c.finding("MF103", "adding NOT NULL column %s without a default fails when %s has rows", col, table)
	}
}

// volatileCall returns the first function in expr that is volatile (known
// true) or not known to be non-volatile (known false).
func (c *migStmt) volatileCall(expr *pg.Node) (name string, known bool) {
	var k migWalk
	k.node(expr.ProtoReflect(), nil)
	for _, f := range k.funcs {
		schema, name, _ := migFuncName(f)
		if v, ok := migVolatility(c.read.Functions, schema, name); ok {
			if v == 'v' {
				return migQualify(schema, name), true
			}
			continue
		}
		if (schema == "" || schema == "pg_catalog") && migNonVolatile[name] {
			continue
		}
		return migQualify(schema, name), false
	}
	return "", false
}

// migVolatility asks the function checker for a function's volatility.
func migVolatility(fc FunctionChecker, schema, name string) (byte, bool) {
	var table map[string]byte
	switch r := fc.(type) {
	case VolatilityReporter:
		return r.FunctionVolatility(schema, name)
	case FunctionRule:
		table = r.Volatility
	case *FunctionRule:
		table = r.Volatility
	}
	if schema != "" && schema != "pg_catalog" {
		return 0, false
	}
	v, ok := table[name]
	return v, ok
}

// qualify renders the statement again with every resolved table name
// schema-qualified, so that running it does not depend on search_path.
func (c *migStmt) qualify() *Refusal {
	for _, ref := range c.walk.rangeVars {
		rv := ref.rv
		q := c.relationName(rv)
		if q == "" || rv.Schemaname != "" {
			continue
		}
		rv.Schemaname = strings.SplitN(q, ".", 2)[0]
	}
	for _, t := range c.listTargets {
		if len(t.names()) == 1 {
			schema := strings.SplitN(t.resolved, ".", 2)[0]
			t.list.Items = append([]*pg.Node{pg.MakeStrNode(schema)}, t.list.Items...)
		}
	}
	c.qualifyCode()
	text, err := pg.Deparse(&pg.ParseResult{Version: c.version, Stmts: []*pg.RawStmt{{Stmt: c.raw.Stmt}}})
	if err != nil {
		return c.refuse("statement_not_allowed", "simplify the statement",
			"airlock could not render the statement with qualified names: %v", err)
	}
	// QualifiedSQL is what runs: it must mean exactly the tree the checks
	// decided on, so a deparser slip (a lost parenthesis, a dropped
	// clause) is a refusal, never a different statement.
	again, err := pg.Parse(text)
	if err != nil || len(again.Stmts) != 1 || !migSameTree(again.Stmts[0].Stmt, c.raw.Stmt) {
		return c.refuse("statement_not_allowed", "simplify the statement",
			"airlock could not render the statement with qualified names so that it keeps its meaning")
	}
	c.out.QualifiedSQL = text
	return nil
}

// qualifyCode makes every function and operator the statement calls
// resolve in pg_catalog only: an unqualified name is looked up through
// the search path, where an object in another schema with a better
// matching signature wins over pg_catalog's (public.upper(integer) over
// pg_catalog.upper(text) for upper(1)). The FunctionChecker and the
// operator rule decided on unqualified names as pg_catalog's, so that is
// what must run. docs/architecture.md, Write statements: the read rules
// everywhere.
func (c *migStmt) qualifyCode() {
	for _, f := range c.walk.funcs {
		if len(f.Funcname) == 1 {
			f.Funcname = migPgCatalog(f.Funcname)
		}
	}
	for _, e := range c.walk.aExprs {
		switch e.Kind {
		case pg.A_Expr_Kind_AEXPR_LIKE, pg.A_Expr_Kind_AEXPR_ILIKE, pg.A_Expr_Kind_AEXPR_SIMILAR:
			// PostgreSQL resolves LIKE, ILIKE and SIMILAR TO exactly as the
			// operator they name (~~, ~~*, ~ and their negations), which
			// can be written qualified; the keywords cannot.
			e.Kind = pg.A_Expr_Kind_AEXPR_OP
			e.Name = migPgCatalog(e.Name)
		case pg.A_Expr_Kind_AEXPR_OP, pg.A_Expr_Kind_AEXPR_OP_ANY, pg.A_Expr_Kind_AEXPR_OP_ALL:
			e.Name = migPgCatalog(e.Name)
		}
		// IN lists, BETWEEN, IS DISTINCT FROM and NULLIF have no syntax
		// for a qualified operator: they resolve = (or <, >, <>) through
		// the search path, which the caller pins with pg_catalog first and
		// checks for same-named operators (SearchPathOperators).
		switch e.Kind {
		case pg.A_Expr_Kind_AEXPR_IN, pg.A_Expr_Kind_AEXPR_DISTINCT, pg.A_Expr_Kind_AEXPR_NOT_DISTINCT, pg.A_Expr_Kind_AEXPR_NULLIF:
			c.searchPathOperator(migStrings(e.Name)...)
		case pg.A_Expr_Kind_AEXPR_BETWEEN, pg.A_Expr_Kind_AEXPR_NOT_BETWEEN,
			pg.A_Expr_Kind_AEXPR_BETWEEN_SYM, pg.A_Expr_Kind_AEXPR_NOT_BETWEEN_SYM:
			c.searchPathOperator("<=", ">=", "<", ">")
		}
	}
	for _, ce := range c.walk.cases {
		if ce.Arg != nil {
			c.searchPathOperator("=")
		}
	}
	for _, j := range c.walk.joins {
		if j.IsNatural || len(j.UsingClause) > 0 {
			c.searchPathOperator("=")
		}
	}
	for _, l := range c.walk.subLinks {
		if l.SubLinkType == pg.SubLinkType_ANY_SUBLINK && len(l.OperName) == 0 {
			// x IN (SELECT ...) is x = ANY (SELECT ...) with its = looked
			// up through the search path.
			l.OperName = []*pg.Node{pg.MakeStrNode("=")}
		}
		l.OperName = migPgCatalog(l.OperName)
	}
	for _, sb := range c.walk.sortBys {
		sb.UseOp = migPgCatalog(sb.UseOp)
	}
	for _, con := range c.walk.constraints {
		for _, ops := range migExclusionOps(con) {
			ops.Items = migPgCatalog(ops.Items)
		}
	}
	// INCLUDING ALL EXCLUDING x keeps PostgreSQL's unused high bits, which
	// the deparser spells as the options that are left: drop them, so the
	// rendering parses back to this tree.
	for _, l := range c.walk.likes {
		if l.Options != migLikeAll {
			l.Options &= migLikeKnown
		}
	}
	// The literal nextval receives is looked up as a regclass when the
	// DEFAULT is created: spelled quoted and qualified, it names exactly
	// the sequence the guard resolved and the caller checked.
	for _, s := range c.sequences {
		s.lit.Sval = quoteIdent(s.schema) + "." + quoteIdent(s.name)
	}
}

// searchPathOperator records operators looked up through the search path.
func (c *migStmt) searchPathOperator(names ...string) {
	for _, n := range names {
		if n != "" && !slices.Contains(c.out.SearchPathOperators, n) {
			c.out.SearchPathOperators = append(c.out.SearchPathOperators, n)
		}
	}
}

// migPgCatalog qualifies a one-element name with pg_catalog and leaves
// every other name (empty or already qualified) as it is.
func migPgCatalog(name []*pg.Node) []*pg.Node {
	if len(name) != 1 {
		return name
	}
	return []*pg.Node{pg.MakeStrNode("pg_catalog"), name[0]}
}

// migExclusionOps returns the operator names of an EXCLUDE constraint's
// elements (each element is a list of an IndexElem and an operator name).
func migExclusionOps(con *pg.Constraint) []*pg.List {
	var out []*pg.List
	for _, n := range con.Exclusions {
		items := n.GetList().GetItems()
		if len(items) == 2 && items[1].GetList() != nil {
			out = append(out, items[1].GetList())
		}
	}
	return out
}

// migSameTree reports whether two parse trees are equal but for the
// source locations they carry.
func migSameTree(a, b proto.Message) bool {
	x, y := proto.Clone(a), proto.Clone(b)
	migClearLocations(x.ProtoReflect())
	migClearLocations(y.ProtoReflect())
	return proto.Equal(x, y)
}

func migClearLocations(m protoreflect.Message) {
	var clear []protoreflect.FieldDescriptor
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Message() == nil:
			name := string(fd.Name())
			if fd.Kind() == protoreflect.Int32Kind && (name == "location" || strings.HasSuffix(name, "_location")) {
				clear = append(clear, fd)
			}
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				migClearLocations(l.Get(i).Message())
			}
		case fd.IsMap():
		default:
			migClearLocations(v.Message())
		}
		return true
	})
	for _, fd := range clear {
		m.Clear(fd)
	}
}

// migWalk collects, from a generic walk over every message of a parse
// tree, the nodes the checks need. CTE names are tracked with their real
// scope so that a RangeVar is only taken for a CTE where PostgreSQL would.
type migWalk struct {
	rangeVars    []migRangeRef
	funcs        []*pg.FuncCall
	columns      []*pg.ColumnRef
	joins        []*pg.JoinExpr
	ctes         []*pg.CommonTableExpr
	constraints  []*pg.Constraint
	typeNames    []*pg.TypeName
	aExprs       []*pg.A_Expr
	cases        []*pg.CaseExpr
	subLinks     []*pg.SubLink
	sortBys      []*pg.SortBy
	collates     []*pg.CollateClause
	indexElems   []*pg.IndexElem
	likes        []*pg.TableLikeClause
	indirections []*pg.A_Indirection
	// xml names the XML expressions the statement holds.
	xml []string
	// noNamespace are RangeVars whose columns no expression can reference
	// (FOREIGN KEY targets, LIKE sources).
	noNamespace []*pg.RangeVar
}

type migRangeRef struct {
	rv  *pg.RangeVar
	cte bool
}

func (k *migWalk) node(m protoreflect.Message, scope map[string]bool) {
	switch n := m.Interface().(type) {
	case *pg.RangeVar:
		k.rangeVars = append(k.rangeVars, migRangeRef{rv: n, cte: n.Schemaname == "" && n.Catalogname == "" && scope[n.Relname]})
		return
	case *pg.ColumnRef:
		k.columns = append(k.columns, n)
		return
	case *pg.LockingClause:
		// FOR UPDATE OF names FROM items, which are checked where they are.
		return
	case *pg.FuncCall:
		k.funcs = append(k.funcs, n)
	case *pg.JoinExpr:
		k.joins = append(k.joins, n)
	case *pg.CommonTableExpr:
		k.ctes = append(k.ctes, n)
	case *pg.Constraint:
		k.constraints = append(k.constraints, n)
		if n.Pktable != nil {
			k.noNamespace = append(k.noNamespace, n.Pktable)
		}
	case *pg.TableLikeClause:
		if n.Relation != nil {
			k.noNamespace = append(k.noNamespace, n.Relation)
			k.likes = append(k.likes, n)
		}
	case *pg.TypeName:
		k.typeNames = append(k.typeNames, n)
	case *pg.A_Expr:
		k.aExprs = append(k.aExprs, n)
	case *pg.CaseExpr:
		k.cases = append(k.cases, n)
	case *pg.SubLink:
		k.subLinks = append(k.subLinks, n)
	case *pg.SortBy:
		k.sortBys = append(k.sortBys, n)
	case *pg.CollateClause:
		k.collates = append(k.collates, n)
	case *pg.IndexElem:
		k.indexElems = append(k.indexElems, n)
	case *pg.A_Indirection:
		k.indirections = append(k.indirections, n)
	case *pg.XmlExpr:
		k.xml = append(k.xml, strings.TrimPrefix(n.Op.String(), "IS_"))
	case *pg.XmlSerialize:
		k.xml = append(k.xml, "XMLSERIALIZE")
	case *pg.RangeTableFunc:
		k.xml = append(k.xml, "XMLTABLE")
	}
	withField := m.Descriptor().Fields().ByName("with_clause")
	inner := scope
	if withField != nil && m.Has(withField) {
		inner = k.with(m.Get(withField).Message().Interface().(*pg.WithClause), scope)
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd == withField || fd.Message() == nil {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				k.node(l.Get(i).Message(), inner)
			}
			return true
		}
		k.node(v.Message(), inner)
		return true
	})
}

// with walks a WITH clause's CTEs, each seeing the CTEs before it (all of
// them under RECURSIVE), and returns the scope of the query that owns it.
func (k *migWalk) with(wc *pg.WithClause, scope map[string]bool) map[string]bool {
	var names []string
	for _, n := range wc.Ctes {
		names = append(names, n.GetCommonTableExpr().GetCtename())
	}
	for i, n := range wc.Ctes {
		visible := migScope(scope, names[:i])
		if wc.Recursive {
			visible = migScope(scope, names)
		}
		k.node(n.ProtoReflect(), visible)
	}
	return migScope(scope, names)
}

func migScope(scope map[string]bool, names []string) map[string]bool {
	out := make(map[string]bool, len(scope)+len(names))
	for n := range scope {
		out[n] = true
	}
	for _, n := range names {
		out[n] = true
	}
	return out
}

func migIsWrite(n *pg.Node) bool {
	switch n.GetNode().(type) {
	case *pg.Node_InsertStmt, *pg.Node_UpdateStmt, *pg.Node_DeleteStmt, *pg.Node_MergeStmt:
		return true
	}
	return false
}

// migFuncName splits a function name; ok is false when it names a
// database.
func migFuncName(f *pg.FuncCall) (schema, name string, ok bool) {
	parts := migStrings(f.Funcname)
	switch len(parts) {
	case 1:
		return "", parts[0], true
	case 2:
		return parts[0], parts[1], true
	}
	return "", strings.Join(parts, "."), false
}

func migQualify(schema, name string) string {
	if schema == "" {
		return name
	}
	return schema + "." + name
}

func migStrings(nodes []*pg.Node) []string {
	var out []string
	for _, n := range nodes {
		if s := n.GetString_(); s != nil {
			out = append(out, s.Sval)
		}
	}
	return out
}

func migSortedKeys(m map[string]bool) []string {
	var out []string
	for k, ok := range m {
		if ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func migIsSerial(t *pg.TypeName) bool {
	names := migStrings(t.GetNames())
	if len(names) != 1 {
		return false
	}
	switch names[0] {
	case "serial", "serial4", "bigserial", "serial8", "smallserial", "serial2":
		return true
	}
	return false
}

// migConstraintName describes a constraint: "CHECK constraint c".
func migConstraintName(con *pg.Constraint) string {
	word := migConstraintWord(con.Contype) + " constraint"
	if con.Conname == "" {
		return word
	}
	return word + " " + con.Conname
}

func migConstraintWord(t pg.ConstrType) string {
	switch t {
	case pg.ConstrType_CONSTR_CHECK:
		return "CHECK"
	case pg.ConstrType_CONSTR_FOREIGN:
		return "FOREIGN KEY"
	case pg.ConstrType_CONSTR_UNIQUE:
		return "UNIQUE"
	case pg.ConstrType_CONSTR_PRIMARY:
		return "PRIMARY KEY"
	case pg.ConstrType_CONSTR_EXCLUSION:
		return "EXCLUDE"
	}
	return strings.TrimPrefix(t.String(), "CONSTR_")
}

func migKindVerb(kind string) string {
	switch kind {
	case "create_table", "create_view":
		return "the statement creates"
	case "create_index":
		return "the statement indexes"
	case "insert", "update", "delete", "truncate":
		return "the statement writes to"
	case "drop_table", "drop_view", "drop_index":
		return "the statement drops"
	case "comment":
		return "the statement comments on"
	}
	return "the statement alters"
}

func migObjectWord(t pg.ObjectType) string {
	return strings.ReplaceAll(strings.TrimPrefix(t.String(), "OBJECT_"), "_", " ")
}

func migTransactionWord(k pg.TransactionStmtKind) string {
	switch k {
	case pg.TransactionStmtKind_TRANS_STMT_BEGIN:
		return "BEGIN"
	case pg.TransactionStmtKind_TRANS_STMT_START:
		return "START TRANSACTION"
	case pg.TransactionStmtKind_TRANS_STMT_COMMIT:
		return "COMMIT"
	case pg.TransactionStmtKind_TRANS_STMT_ROLLBACK:
		return "ROLLBACK"
	case pg.TransactionStmtKind_TRANS_STMT_SAVEPOINT:
		return "SAVEPOINT"
	case pg.TransactionStmtKind_TRANS_STMT_RELEASE:
		return "RELEASE SAVEPOINT"
	case pg.TransactionStmtKind_TRANS_STMT_ROLLBACK_TO:
		return "ROLLBACK TO SAVEPOINT"
	case pg.TransactionStmtKind_TRANS_STMT_PREPARE:
		return "PREPARE TRANSACTION"
	case pg.TransactionStmtKind_TRANS_STMT_COMMIT_PREPARED:
		return "COMMIT PREPARED"
	case pg.TransactionStmtKind_TRANS_STMT_ROLLBACK_PREPARED:
		return "ROLLBACK PREPARED"
	}
	return "a transaction statement"
}

// migStmtName names a statement type for a refusal: the parse node's name
// in words ("CreateSchemaStmt" becomes "CREATE SCHEMA").
func migStmtName(n *pg.Node) string {
	fd := n.ProtoReflect().WhichOneof(n.ProtoReflect().Descriptor().Oneofs().ByName("node"))
	if fd == nil {
		return "an empty statement"
	}
	if name, ok := migStmtNames[string(fd.Message().Name())]; ok {
		return name
	}
	name := strings.TrimSuffix(string(fd.Message().Name()), "Stmt")
	var words []string
	start := 0
	for i := 1; i <= len(name); i++ {
		if i == len(name) || (name[i] >= 'A' && name[i] <= 'Z' && name[i-1] >= 'a' && name[i-1] <= 'z') {
			words = append(words, strings.ToUpper(name[start:i]))
			start = i
		}
	}
	return strings.Join(words, " ")
}

// migStmtNames are the statement names migStmtName cannot derive.
var migStmtNames = map[string]string{
	"CreatedbStmt":                 "CREATE DATABASE",
	"DropdbStmt":                   "DROP DATABASE",
	"AlterDatabaseStmt":            "ALTER DATABASE",
	"AlterDatabaseSetStmt":         "ALTER DATABASE SET",
	"AlterDatabaseRefreshCollStmt": "ALTER DATABASE REFRESH COLLATION VERSION",
	"CreateTableSpaceStmt":         "CREATE TABLESPACE",
	"DropTableSpaceStmt":           "DROP TABLESPACE",
	"AlterTableSpaceOptionsStmt":   "ALTER TABLESPACE",
	"AlterTableMoveAllStmt":        "ALTER TABLE ALL IN TABLESPACE",
	"CreateRoleStmt":               "CREATE ROLE",
	"AlterRoleStmt":                "ALTER ROLE",
	"AlterRoleSetStmt":             "ALTER ROLE SET",
	"DropRoleStmt":                 "DROP ROLE",
	"GrantStmt":                    "GRANT/REVOKE",
	"GrantRoleStmt":                "GRANT/REVOKE role",
	"AlterDefaultPrivilegesStmt":   "ALTER DEFAULT PRIVILEGES",
	"AlterOwnerStmt":               "ALTER ... OWNER TO",
	"ReassignOwnedStmt":            "REASSIGN OWNED",
	"DropOwnedStmt":                "DROP OWNED",
	"CreateTrigStmt":               "CREATE TRIGGER",
	"CreateEventTrigStmt":          "CREATE EVENT TRIGGER",
	"AlterEventTrigStmt":           "ALTER EVENT TRIGGER",
	"RuleStmt":                     "CREATE RULE",
	"CreatePlangStmt":              "CREATE LANGUAGE",
	"CreateFunctionStmt":           "CREATE FUNCTION/PROCEDURE",
	"AlterFunctionStmt":            "ALTER FUNCTION/PROCEDURE",
	"CreateSeqStmt":                "CREATE SEQUENCE",
	"AlterSeqStmt":                 "ALTER SEQUENCE",
	"CheckPointStmt":               "CHECKPOINT",
	"ClusterStmt":                  "CLUSTER",
	"ReindexStmt":                  "REINDEX",
	"DiscardStmt":                  "DISCARD",
	"ListenStmt":                   "LISTEN",
	"NotifyStmt":                   "NOTIFY",
	"UnlistenStmt":                 "UNLISTEN",
	"PrepareStmt":                  "PREPARE",
	"ExecuteStmt":                  "EXECUTE",
	"DeallocateStmt":               "DEALLOCATE",
	"DeclareCursorStmt":            "DECLARE CURSOR",
	"FetchStmt":                    "FETCH/MOVE",
	"ClosePortalStmt":              "CLOSE",
	"VariableShowStmt":             "SHOW",
	"RefreshMatViewStmt":           "REFRESH MATERIALIZED VIEW",
	"AlterObjectSchemaStmt":        "ALTER ... SET SCHEMA",
	"AlterObjectDependsStmt":       "ALTER ... DEPENDS ON EXTENSION",
	"CreateForeignTableStmt":       "CREATE FOREIGN TABLE",
	"ImportForeignSchemaStmt":      "IMPORT FOREIGN SCHEMA",
	"CreateStatsStmt":              "CREATE STATISTICS",
	"CompositeTypeStmt":            "CREATE TYPE",
	"CreateEnumStmt":               "CREATE TYPE ... AS ENUM",
	"CreateRangeStmt":              "CREATE TYPE ... AS RANGE",
	"DefineStmt":                   "CREATE (aggregate, operator, type, collation or text search object)",
	"CreateSchemaStmt":             "CREATE SCHEMA",
	"CreateExtensionStmt":          "CREATE EXTENSION",
	"AlterExtensionStmt":           "ALTER EXTENSION",
	"AlterExtensionContentsStmt":   "ALTER EXTENSION ADD/DROP",
	"CreatePolicyStmt":             "CREATE POLICY",
	"AlterPolicyStmt":              "ALTER POLICY",
	"CreateCastStmt":               "CREATE CAST",
	"CreateTransformStmt":          "CREATE TRANSFORM",
	"CreatePublicationStmt":        "CREATE PUBLICATION",
	"CreateSubscriptionStmt":       "CREATE SUBSCRIPTION",
	"CreateUserMappingStmt":        "CREATE USER MAPPING",
	"CreateForeignServerStmt":      "CREATE SERVER",
	"CreateFdwStmt":                "CREATE FOREIGN DATA WRAPPER",
	"AlterTsconfigurationStmt":     "ALTER TEXT SEARCH CONFIGURATION",
	"AlterTsdictionaryStmt":        "ALTER TEXT SEARCH DICTIONARY",
	"AlterEnumStmt":                "ALTER TYPE",
	"AlterTypeStmt":                "ALTER TYPE",
	"ReturnStmt":                   "RETURN",
	"PlassignStmt":                 "a PL/pgSQL assignment",
}
