// Classifying a migration statement: the closed list of statement types,
// the refusals with a reason of their own for every other type, the scope's
// write.allow and DO's language.

package sqlguard

import (
	"slices"
	"strings"

	"github.com/airlock-dev/airlock/scopes"
	pg "github.com/pganalyze/pg_query_go/v6"
)

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
		c.kinds = []string{scopes.KindCreateIndex}
		c.targets[s.IndexStmt.Relation] = ""
	case *pg.Node_InsertStmt:
		c.kinds = []string{scopes.KindInsert}
		c.targets[s.InsertStmt.Relation] = ""
	case *pg.Node_UpdateStmt:
		c.kinds = []string{scopes.KindUpdate}
		c.targets[s.UpdateStmt.Relation] = ""
		c.out.HasWhere = s.UpdateStmt.WhereClause != nil
	case *pg.Node_DeleteStmt:
		c.kinds = []string{scopes.KindDelete}
		c.targets[s.DeleteStmt.Relation] = ""
		c.out.HasWhere = s.DeleteStmt.WhereClause != nil
	case *pg.Node_TruncateStmt:
		if s.TruncateStmt.Behavior == pg.DropBehavior_DROP_CASCADE {
			return c.refuse("cascade", migHintCascade, "TRUNCATE ... CASCADE also truncates every table that references these")
		}
		c.kinds = []string{scopes.KindTruncate}
		for _, r := range s.TruncateStmt.Relations {
			c.targets[r.GetRangeVar()] = ""
		}
	case *pg.Node_ViewStmt:
		if s.ViewStmt.View.Relpersistence == "t" {
			return c.refuse("temp_object", migHintTemp, "CREATE TEMPORARY VIEW creates a temporary object")
		}
		c.kinds = []string{scopes.KindCreateView}
		c.newRel = s.ViewStmt.View
		c.targets[s.ViewStmt.View] = ""
	case *pg.Node_CommentStmt:
		return c.classifyComment(s.CommentStmt)
	case *pg.Node_DoStmt:
		c.kinds = []string{scopes.KindDo}
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
		c.kinds = []string{scopes.KindCall}
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
		case scopes.KindDo, scopes.KindCall:
			return c.refuse("kind_not_allowed", "write the statements as plain SQL; "+hint,
				"%s runs procedural code airlock cannot inspect, and this scope does not allow kind %q", strings.ToUpper(k), k)
		}
		return c.refuse("kind_not_allowed", hint, "statement kind %q is not allowed by this scope", k)
	}
	c.out.Kind = c.kinds[0]
	c.out.Kinds = slices.Clone(c.kinds)
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
