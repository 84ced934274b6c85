package codes

// Where says where a code arises.
type Where string

// The places codes arise, in the order a call meets them.
const (
	// ToolArguments: a tool call's arguments, checked before any guard.
	ToolArguments Where = "tool arguments"
	// ReadGuard: sqlguard.CheckRead, the read rules of query_readonly.
	ReadGuard Where = "read guard"
	// MigrationGuard: sqlguard.CheckMigration, the write rules of
	// migrate_dry_run, apply_migration_with_ticket and a reviewer's
	// recheck of a stored change.
	MigrationGuard Where = "migration guard"
	// CatalogChecks: the write checks that look objects up in the
	// database after the migration guard accepted a migration.
	CatalogChecks Where = "catalog checks"
	// Apply: apply_migration_with_ticket's own refusals (ticket, summary,
	// limits, locks, branches).
	Apply Where = "apply"
	// Results: failures of a call that passed every check.
	Results Where = "results and failures"
	// ReviewAPI: the review page's JSON API (error.code).
	ReviewAPI Where = "review API"
	// RowFilter: a scope's row_filter, checked by airlock check, scope
	// plan, scope apply and doctor.
	RowFilter Where = "row filter"
)

// Place describes a Where for docs/refusals.md.
type Place struct {
	Where Where
	Text  string
}

// Places lists every Where, in the order a call meets them, with what it
// covers.
var Places = []Place{
	{ToolArguments, "a tool call's arguments, checked before any guard (`tools`)"},
	{ReadGuard, "the read rules of `query_readonly`, decided on the parse tree (`sqlguard.CheckRead`)"},
	{MigrationGuard, "the write rules of `migrate_dry_run`, `apply_migration_with_ticket` and a reviewer's recheck, decided on the parse tree (`sqlguard.CheckMigration`, `sqlguard.MigrationRefusalCodes`)"},
	{CatalogChecks, "the write checks that look objects up in the database once the migration guard accepted a migration (`tools`)"},
	{Apply, "`apply_migration_with_ticket`'s own refusals: ticket, summary, limits, held locks, branches (`tools`)"},
	{Results, "failures of a call that passed every check (`tools`)"},
	{ReviewAPI, "the review page's JSON API, `error.code` with the HTTP status (`reviewweb`)"},
	{RowFilter, "a scope's `row_filter`, checked by `airlock check`, `scope plan`, `scope apply` and `doctor` (`sqlguard.ParseRowFilter`, `roles`)"},
}

// Code is one registered code: its stable name, where it arises and what
// it means. A name may be registered for several places, each with its
// own meaning there.
type Code struct {
	Name    string
	Where   Where
	Meaning string
}

// Registry holds every code, grouped by where it arises.
var Registry = []Code{
	{"bad_arguments", ToolArguments, "the arguments are not a JSON object matching the tool's input schema (max_rows below 1, too many params, a param that is not a JSON scalar)"},
	{"empty_sql", ToolArguments, "sql is empty or only white space"},
	{"sql_too_large", ToolArguments, "sql is longer than the scope's read.max_sql_bytes"},
	{"nul_byte", ToolArguments, "sql contains a NUL byte"},
	{"invalid_utf8", ToolArguments, "sql is not valid UTF-8"},
	{"table_not_in_scope", ToolArguments, "describe_table names a table that is not in scope"},
	{"bad_change_id", ToolArguments, "get_change_status was given a change_id that is not a UUID"},
	{"change_not_found", ToolArguments, "get_change_status was given a change_id this scope has no change for"},

	{"syntax_error", ReadGuard, "the statement does not parse"},
	{"empty_statement", ReadGuard, "the SQL is empty or holds no statement (only comments)"},
	{"invalid_input", ReadGuard, "the SQL is not valid UTF-8 or contains a NUL byte (the guard repeats the input checks)"},
	{"multiple_statements", ReadGuard, "more than one statement in one call"},
	{"statement_not_allowed", ReadGuard, "the statement (or the statement under EXPLAIN) is not a SELECT"},
	{"explain_option_not_allowed", ReadGuard, "an EXPLAIN option other than VERBOSE, COSTS, SETTINGS, GENERIC_PLAN and FORMAT TEXT, JSON, YAML or XML, or ANALYZE, BUFFERS, SUMMARY not set to false"},
	{"explain_not_allowed", ReadGuard, "EXPLAIN over a table with a row_filter, with row-level security or a view: the estimates count the hidden rows"},
	{"select_into", ReadGuard, "SELECT ... INTO creates a table"},
	{"locking_clause", ReadGuard, "FOR UPDATE / FOR SHARE and the other row locking clauses"},
	{"data_modifying_cte", ReadGuard, "INSERT, UPDATE, DELETE or MERGE inside WITH"},
	{"unsupported_syntax", ReadGuard, "a parse tree node the guard does not know, or a rewrite that does not survive a parse round trip (fail closed)"},
	{"table_not_in_scope", ReadGuard, "a relation anywhere in the statement is not an in-scope table (catalogs, information_schema, unlisted views, database-qualified names)"},
	{"column_not_allowed", ReadGuard, "a denied column or a system column is referenced"},
	{"unknown_column", ReadGuard, "no table in FROM (or not the named one) has the column"},
	{"unknown_reference", ReadGuard, "a qualified column reference names no table or alias in FROM, or a database"},
	{"star_not_allowed", ReadGuard, "* or t.* over a table with a column list or masks"},
	{"whole_row_not_allowed", ReadGuard, "a whole-row reference (to_json(t)) to a table with a column list or masks"},
	{"column_alias_not_allowed", ReadGuard, "column aliases in FROM on a table with restricted columns"},
	{"natural_join_not_allowed", ReadGuard, "NATURAL JOIN with a table with restricted columns"},
	{"masked_column_misuse", ReadGuard, "a masked column used other than as a plain top-level output column (WHERE, JOIN, ORDER BY, GROUP BY, expressions, by alias or position, under *)"},
	{"function_not_allowed", ReadGuard, "a function outside the function rule: not built in and not listed by the scope, volatile, on the denylist, a catalog lookup, or any call when the scope allows none"},
	{"operator_not_allowed", ReadGuard, "an operator qualified with a schema other than pg_catalog"},
	{"type_not_allowed", ReadGuard, "an xml or object identifier (reg*) type, or a type of a schema outside the scope"},
	{"collation_not_allowed", ReadGuard, "a collation qualified with a schema other than pg_catalog"},

	{"syntax_error", MigrationGuard, "the migration does not parse"},
	{"empty", MigrationGuard, "the migration holds no statement"},
	{"too_many_statements", MigrationGuard, "more than MaxMigrationStatements statements"},
	{"statement_not_allowed", MigrationGuard, "the statement (or ALTER TABLE subcommand) is not one of MigrationKinds"},
	{"kind_not_allowed", MigrationGuard, "the statement's kind (any one of an ALTER TABLE's subcommand kinds) is not in write.allow"},
	{"table_not_writable", MigrationGuard, "a table the statement creates, alters, writes, drops or comments on is not in write.tables"},
	{"table_not_in_scope", MigrationGuard, "a table the statement only reads is neither writable nor readable"},
	{"column_not_allowed", MigrationGuard, "a denied or masked column of a read table is used, or * / a whole-row reference would expose one"},
	{"function_not_allowed", MigrationGuard, "a function call is refused (the read policy's FunctionChecker may use its own code instead)"},
	{"cross_database", MigrationGuard, "a name is qualified with a database"},
	{"transaction_control", MigrationGuard, "BEGIN, COMMIT, ROLLBACK, SAVEPOINT, PREPARE TRANSACTION and the like"},
	{"privileges", MigrationGuard, "roles, GRANT/REVOKE, default privileges, SET ROLE, SET SESSION AUTHORIZATION, OWNER TO"},
	{"session_setting", MigrationGuard, "SET, RESET, SET TRANSACTION, SET CONSTRAINTS"},
	{"server_config", MigrationGuard, "ALTER SYSTEM"},
	{"database", MigrationGuard, "CREATE, ALTER, DROP or RENAME DATABASE"},
	{"tablespace", MigrationGuard, "CREATE, ALTER, DROP or RENAME TABLESPACE"},
	{"extension", MigrationGuard, "CREATE, ALTER or DROP EXTENSION"},
	{"load", MigrationGuard, "LOAD of a shared library"},
	{"copy", MigrationGuard, "any COPY"},
	{"not_transactional", MigrationGuard, "statements that cannot run in (or be rolled back with) a transaction block"},
	{"listen_notify", MigrationGuard, "LISTEN, NOTIFY, UNLISTEN"},
	{"prepared_statement", MigrationGuard, "PREPARE, EXECUTE, DEALLOCATE"},
	{"cursor", MigrationGuard, "DECLARE, FETCH, CLOSE"},
	{"lock", MigrationGuard, "LOCK TABLE"},
	{"code_object", MigrationGuard, "functions, procedures, triggers, rules, event triggers, policies, aggregates, languages, casts, transforms"},
	{"security_label", MigrationGuard, "SECURITY LABEL"},
	{"temp_object", MigrationGuard, "temporary or unlogged tables and temporary views"},
	{"create_table_as", MigrationGuard, "CREATE TABLE AS and SELECT INTO"},
	{"cascade", MigrationGuard, "DROP, TRUNCATE or DROP COLUMN/CONSTRAINT with CASCADE"},
	{"data_modifying_cte", MigrationGuard, "INSERT, UPDATE, DELETE or MERGE inside WITH"},
	{"type_not_allowed", MigrationGuard, "an xml or object identifier (reg*) type anywhere (casts, column types), or a type qualified with a schema that is neither pg_catalog nor one of the scope's"},
	{"operator_not_allowed", MigrationGuard, "an operator qualified with a schema other than pg_catalog"},
	{"collation_not_allowed", MigrationGuard, "a collation qualified with a schema other than pg_catalog"},
	{"opclass_not_allowed", MigrationGuard, "an operator class qualified with a schema that is neither pg_catalog nor one of the scope's"},
	{"like_not_allowed", MigrationGuard, "CREATE TABLE ... LIKE of a table with restricted columns, or copying expressions (INCLUDING DEFAULTS, CONSTRAINTS, GENERATED, INDEXES, STATISTICS) from a table that is not writable"},

	{"index_not_writable", CatalogChecks, "an index the migration drops, alters, renames or comments on is not on a writable table"},
	{"sequence_not_writable", CatalogChecks, "a DEFAULT calls nextval on a sequence no column of a writable table owns"},
	{"operator_not_allowed", CatalogChecks, "a comparison that cannot name a qualified operator (IN, BETWEEN, IS DISTINCT FROM, NULLIF, CASE x WHEN, JOIN USING) while one of the scope's schemas defines an operator of that name"},
	{"no_primary_key", CatalogChecks, "with write.undo on, a changed table has no primary key (or replica identity index), so a revert could not tell its rows apart"},
	{"no_write_section", CatalogChecks, "a stored change is rechecked against a scope that has no write section"},

	{"bad_ticket", Apply, "the ticket does not match the scope's write.ticket_pattern"},
	{"bad_summary", Apply, "the summary is empty, too long or not valid UTF-8"},
	{"too_many_pending", Apply, "the scope or the session already has write.max_pending / max_pending_per_session changes waiting for a reviewer"},
	{"prepared_slots_full", Apply, "prepared mode, and the server has no free max_prepared_transactions slot"},
	{"blocking_lock", Apply, "prepared mode, and the change would hold a lock that blocks reads of a table in use until it is reviewed"},
	{"branch_closed", Apply, "branch mode, and the session's branch was merged, discarded or expired (also while the change was being applied)"},
	{"too_many_branches", Apply, "branch mode, and the scope has write.branch.max_branches live branches"},
	{"branch_unavailable", Apply, "branch mode, and the source database is in use so the branch cannot be copied from it"},

	{"statement_failed", Results, "PostgreSQL rejected a migration statement; nothing was applied"},
	{"cascade_outside_scope", Results, "a foreign key action (ON DELETE/ON UPDATE CASCADE, SET NULL, SET DEFAULT) changed rows of a table outside write.tables; nothing was applied"},
	{"result_not_encodable", Results, "the result could not be encoded as JSON; nothing was changed"},
	{"timeout", Results, "the statement ran past statement_timeout, or the call ran out of time"},
	{"lock_timeout", Results, "a lock was not granted within lock_timeout"},
	{"canceled", Results, "the call was canceled"},
	{"database_unavailable", Results, "the database could not be reached, restarted, is shutting down or dropped the connection"},
	{"database_error", Results, "any other PostgreSQL error, with its message and SQLSTATE"},

	{"bad_request", ReviewAPI, "HTTP 400/413: the body is over 64 KiB or not the JSON object expected, or an audit filter is invalid"},
	{"unauthorized", ReviewAPI, "HTTP 401: no valid reviewer token or session"},
	{"agent_token", ReviewAPI, "HTTP 401: an agent token was sent; reviewers sign in with their own"},
	{"cross_origin", ReviewAPI, "HTTP 403: a state-changing request that did not come from the review page's origin"},
	{"csrf", ReviewAPI, "HTTP 403: a session's state-changing request without its CSRF token"},
	{"not_allowed", ReviewAPI, "HTTP 403: PostgreSQL refused the reviewer's login the decision (insufficient privilege)"},
	{"not_found", ReviewAPI, "HTTP 404: no such change, branch or API path"},
	{"wrong_host", ReviewAPI, "HTTP 421: a loopback listener was asked under a foreign Host (DNS rebinding)"},
	{"drifted", ReviewAPI, "HTTP 409: on commit or merge the replay's effects differ from the dry run's; nothing was committed and the change is drifted"},
	{"not_pending", ReviewAPI, "HTTP 409: the change or branch was already decided, expired or drifted"},
	{"approval_mismatch", ReviewAPI, "HTTP 409: the content the reviewer approved (expect) is not what the change holds now"},
	{"recheck_failed", ReviewAPI, "HTTP 409: the scope as applied no longer allows the stored statements, or they are not what the guard makes of the SQL"},
	{"already_approved", ReviewAPI, "HTTP 409: this reviewer's approval is recorded already; another reviewer must approve"},
	{"scope_not_applied", ReviewAPI, "HTTP 409: the change's scope has no entry in airlock.scopes (airlock scope apply was not run in this database)"},
	{"not_committed", ReviewAPI, "HTTP 409: a revert of a change that was never committed"},
	{"not_revertible", ReviewAPI, "HTTP 409: the change cannot be reverted (nothing was captured, the capture was purged, or a statement cannot be undone)"},
	{"revert_conflict", ReviewAPI, "HTTP 409: rows the change touched were changed by others since; the conflicting keys are named"},
	{"timeout", ReviewAPI, "HTTP 504: the request ran out of time"},
	{"failed", ReviewAPI, "HTTP 500: any other error"},

	{"row_filter_not_allowed", RowFilter, "the row_filter is not one boolean expression over the table's columns (several statements, a subquery, another table, a function outside pg_catalog, ...)"},
	{"function_not_allowed", RowFilter, "the row_filter calls a function the read rules refuse, or a volatile one"},
}

// In returns the codes registered for where, each with its meaning there.
func In(where Where) map[string]string {
	m := map[string]string{}
	for _, c := range Registry {
		if c.Where == where {
			m[c.Name] = c.Meaning
		}
	}
	return m
}
