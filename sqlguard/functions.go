package sqlguard

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// funcRuleHint is the hint of every function refusal.
const funcRuleHint = "use built-in immutable or stable functions"

// FunctionRule is the default FunctionChecker.
//
// An unqualified or pg_catalog-qualified call is refused when its name is
// on the denylist below, or when the call may resolve to an overload of the
// catalog lookup class (CatalogLookup); it is allowed when it is on the
// short list of volatile but harmless functions, and otherwise allowed only
// when every overload of the name is immutable or stable. A call qualified
// with any other schema is allowed only when the scope lists it in Allowed.
// The caller runs statements with search_path = pg_catalog, pg_temp, where
// an unqualified function name can only resolve to pg_catalog (PostgreSQL
// never looks up functions in pg_temp implicitly), which is why one table of
// pg_catalog names is enough for unqualified calls.
//
// Volatility is not safety: several stable catalog functions read
// relations, files or server state named in their arguments, bypassing
// every check on FROM, and many more answer whether an object outside the
// scope exists and what it is called. The catalog lookup class, computed
// from pg_proc by the caller, stops the second kind as a whole; the
// denylist names the first kind and repeats the best-known lookups, so
// that a rule built without the class still refuses them; the scope's
// database role is the wall behind both (docs/architecture.md, Catalog
// lookups).
type FunctionRule struct {
	// Volatility maps a pg_catalog function name to the strongest
	// volatility of all its overloads: 'i' (immutable), 's' (stable) or
	// 'v' (volatile), as pg_proc.provolatile has it. The caller loads it
	// from the database.
	Volatility map[string]byte
	// CatalogLookup maps a pg_catalog function name to its overloads in
	// the catalog lookup class: functions that map oids or names to
	// catalog objects (type input and output functions, and functions
	// with an object identifier type in their signature; the caller
	// computes the class from pg_proc, see docs/architecture.md, Catalog
	// lookups). A name that is absent has no such overload. The guard
	// cannot see which overload PostgreSQL picks, but PostgreSQL only
	// considers overloads that accept the call's number of arguments, so
	// a call is refused when any overload in the class accepts that many
	// (CheckCall), and a check by name alone (CheckFunction) refuses the
	// name outright.
	CatalogLookup map[string]LookupForms
	// Allowed lists extra functions, as "schema.name", that the scope
	// allows. It cannot re-allow a denylisted pg_catalog function.
	Allowed map[string]bool
}

// LookupForms are the overloads of one pg_catalog function name that are
// in the catalog lookup class.
type LookupForms struct {
	// Args holds the numbers of arguments a call may have to resolve to
	// one of them.
	Args []ArgCount
	// Others is true when the name also has overloads outside the class
	// (to_tsvector(text) next to to_tsvector(regconfig, text)).
	Others bool
}

// ArgCount is a range of argument counts an overload accepts: Min to Max,
// or Min and more when Max < 0 (a VARIADIC parameter). Parameters with
// defaults lower Min.
type ArgCount struct{ Min, Max int }

func (a ArgCount) accepts(n int) bool { return n >= a.Min && (a.Max < 0 || n <= a.Max) }

// funcRuleLookupWhy and funcRuleLookupHint are the refusal of a call in
// the catalog lookup class.
const (
	funcRuleLookupWhy  = "looks up catalog objects by oid or name"
	funcRuleLookupHint = "list_tables and describe_table show what the scope lets you see of the schema"
)

var _ FunctionChecker = FunctionRule{}

// funcRuleDenylist is every pg_catalog function name refused whatever its
// volatility, grouped by why. A name ending in "*" is a prefix, one
// starting with "*" a suffix, one with both an infix.
var funcRuleDenylist = []struct {
	why, hint string
	names     []string
}{
	// Files on the database server: contents, listings, metadata, paths.
	{"reads or lists files on the database server", "read only the tables list_tables shows", []string{
		"pg_read_*", "pg_ls_*", "pg_stat_file", "pg_file_*", "pg_logdir_ls", "pg_current_logfile",
		"pg_relation_filepath", "pg_relation_filenode", "pg_filenode_relation", "pg_tablespace_location",
	}},
	// Large objects live outside every table and lo_import/lo_export touch
	// server files.
	{"reads or writes large objects or server files", "read only the tables list_tables shows", []string{"lo_*", "loread", "lowrite"}},
	// Run a query given as text, or read a relation named in an argument,
	// so the FROM check never sees what they read.
	{"reads relations named in its arguments", "name the tables in FROM, where the scope can check them", []string{
		"*_to_xml*", "query_to_*", "cursor_to_*", "table_to_*", "schema_to_*", "database_to_*",
		"ts_stat", "ts_rewrite", "pg_sequence_*", "pg_mcv_list_items",
	}},
	// Catalog and server introspection beyond the scope: object
	// definitions, comments, statistics (which hold sample values of
	// columns), activity of other sessions, configuration.
	{"reveals catalog, statistics or server state outside the scope", "list_tables and describe_table show what the scope lets you see of the schema", []string{
		"pg_get_*", "pg_stat_*", "pg_describe_object", "pg_identify_object*", "obj_description", "col_description",
		"shobj_description", "pg_show_*", "pg_hba_file_rules", "pg_ident_file_mappings", "pg_config", "pg_control_*",
		"current_setting", "pg_settings_get_flags", "pg_prepared_*", "pg_blocking_pids", "pg_safe_snapshot_blocking_pids",
		"pg_lock_status", "pg_cursor", "pg_available_extension*", "pg_extension_update_paths", "pg_current_snapshot",
	}},
	// Resolve object names or probe privileges and sizes: each answers
	// whether a table outside the scope exists and what it looks like.
	{"reveals objects outside the scope", "list_tables and describe_table show what the scope lets you see of the schema", []string{
		"to_reg*", "has_*", "pg_has_role", "*_is_visible", "pg_relation_size", "pg_total_relation_size",
		"pg_table_size", "pg_indexes_size", "pg_database_size", "pg_tablespace_size", "pg_partition_*",
		"pg_index_column_has_property", "pg_index_has_property", "pg_relation_is_updatable", "pg_column_is_updatable",
		"pg_input_*",
	}},
	// The best-known members of the catalog lookup class (FunctionRule,
	// CatalogLookup), repeated here so that a rule built without the
	// class still refuses them: the input and output functions of the
	// object identifier types and of aclitem (whose text names roles);
	// pg_typeof, whose regtype result turns a string literal it meets
	// (ARRAY[pg_typeof(x), 'public.t']) into a lookup by name; format_type
	// and oidvectortypes, which name the types of any oids; and
	// row_security_active, which resolves the table named in its text.
	{funcRuleLookupWhy, funcRuleLookupHint, []string{
		"regclass*", "regproc*", "regoper*", "regtype*", "regnamespace*", "regrole*", "regcollation*",
		"regconfig*", "regdictionary*", "oidin", "oidout", "acl*", "*aclitem*", "pg_typeof",
		"format_type", "oidvectortypes", "row_security_active",
	}},
	// Change settings or server state, or act on other sessions.
	{"changes settings or server state", "leave settings and server state alone: airlock sets what a read needs", []string{
		"set_config", "pg_reload_conf", "pg_rotate_logfile*", "pg_terminate_backend", "pg_cancel_backend", "pg_promote",
		"pg_log_*", "pg_switch_wal", "pg_wal_replay_*", "pg_create_*", "pg_drop_*", "pg_copy_*", "pg_replication_*",
		"pg_logical_*", "pg_sync_*", "pg_backup_*", "pg_start_backup", "pg_stop_backup", "pg_import_system_collations",
		"pg_extension_config_dump", "pg_nextoid", "pg_clear_*", "pg_restore_*", "pg_set_*", "binary_upgrade_*",
		"brin_*", "gin_clean_pending_list", "pg_notify",
	}},
	// Locks and sleeps outlive the read and poison pooled connections.
	{"holds locks or sleeps beyond the read", "a read must not wait or lock; query without it", []string{"pg_advisory_*", "pg_try_advisory_*", "pg_sleep*"}},
	// Sequences and transaction ids change state that a rollback does not
	// undo (or fail noisily in a read-only transaction).
	{"advances sequences or assigns transaction ids", "read the values from the table instead", []string{
		"nextval", "currval", "setval", "lastval", "txid_*", "pg_current_xact_id*", "pg_export_snapshot",
	}},
	// Other databases and servers are outside the scope.
	{"connects to other databases", "query only the tables list_tables shows", []string{"dblink*", "postgres_fdw*"}},
	// The XML parser is large attack surface for no read-only need.
	{"processes XML", "use the json and jsonb functions instead", []string{"xml*", "xpath*"}},
}

// funcRuleHarmless are volatile functions allowed anyway: they only read
// the clock or a random source.
var funcRuleHarmless = map[string]bool{
	"random":              true,
	"random_normal":       true,
	"gen_random_uuid":     true,
	"clock_timestamp":     true,
	"statement_timestamp": true,
	"timeofday":           true,
}

// CheckFunction implements FunctionChecker. Without the call's number of
// arguments, a name with any overload in the catalog lookup class is
// refused.
func (r FunctionRule) CheckFunction(schema, name string) *Refusal {
	return r.CheckCall(schema, name, -1)
}

// CheckCall decides on a call of schema.name with nargs arguments, as the
// parse tree has them (nargs < 0: unknown). It is CheckFunction, except
// that a name whose catalog lookup overloads all take another number of
// arguments than the call passes is not refused for them.
func (r FunctionRule) CheckCall(schema, name string, nargs int) *Refusal {
	if schema != "" && schema != "pg_catalog" {
		if r.Allowed[schema+"."+name] {
			return nil
		}
		return refuse("function_not_allowed", funcRuleHint, "function %s.%s is not allowed", schema, name)
	}
	if why, hint := funcRuleDenied(name); why != "" {
		// Denied whatever its volatility: saying "use stable functions"
		// about a stable function would send the agent in circles.
		return refuse("function_not_allowed", hint, "function %s is not allowed: it %s", name, why)
	}
	if forms, ok := r.CatalogLookup[name]; ok && forms.lookup(nargs) {
		hint := funcRuleLookupHint
		if forms.Others && nargs >= 0 {
			hint = "the forms of " + name + " without an argument that names a catalog object are allowed; " + hint
		}
		return refuse("function_not_allowed", hint, "function %s is not allowed: it %s", name, funcRuleLookupWhy)
	}
	if funcRuleHarmless[name] {
		return nil
	}
	switch r.Volatility[name] {
	case 'i', 's':
		return nil
	case 'v':
		return refuse("function_not_allowed", funcRuleHint, "function %s is not allowed: it is volatile", name)
	}
	if schema == "" {
		for q := range r.Allowed {
			if _, n, ok := strings.Cut(q, "."); ok && n == name {
				return refuse("function_not_allowed", "qualify it with its schema: "+q+"(...)", "unknown function %s", name)
			}
		}
	}
	return refuse("function_not_allowed", funcRuleHint, "unknown function %s", name)
}

// lookup reports whether a call with nargs arguments (< 0: unknown) may
// resolve to one of the forms. A name listed without argument counts is
// refused whatever the call passes.
func (f LookupForms) lookup(nargs int) bool {
	if nargs < 0 || len(f.Args) == 0 {
		return true
	}
	for _, a := range f.Args {
		if a.accepts(nargs) {
			return true
		}
	}
	return false
}

// checkCall asks a function checker about a call with nargs arguments, as
// the parse tree has them. FunctionRule is given the number, which narrows
// its catalog lookup class to the overloads PostgreSQL could pick; any
// other checker, including a type that embeds FunctionRule to refuse more
// (whose CheckCall would skip its own CheckFunction), is asked by name,
// where the class is refused whole.
func checkCall(fc FunctionChecker, schema, name string, nargs int) *Refusal {
	switch r := fc.(type) {
	case FunctionRule:
		return r.CheckCall(schema, name, nargs)
	case *FunctionRule:
		if r != nil {
			return r.CheckCall(schema, name, nargs)
		}
	}
	return fc.CheckFunction(schema, name)
}

// checkCallArgs is checkCall with the call's arguments: the text search
// functions take their configuration as a regconfig, which puts their
// two-argument forms in the catalog lookup class, yet a full-text index or
// generated column needs exactly those forms (the one-argument ones are
// only stable). A configuration written as the literal name of one of
// PostgreSQL's built-in configurations looks nothing up that is not
// already known, so those calls are judged as their one-argument form.
func checkCallArgs(fc FunctionChecker, schema, name string, args []*pg_query.Node) *Refusal {
	if (schema == "" || schema == "pg_catalog") && tsConfigFunctions[name] && len(args) >= 2 {
		if s := args[0].GetAConst().GetSval(); s != nil && builtinTSConfigs[s.Sval] {
			return checkCall(fc, schema, name, len(args)-1)
		}
	}
	return checkCall(fc, schema, name, len(args))
}

// tsConfigFunctions take a regconfig first and a document or query after.
var tsConfigFunctions = map[string]bool{
	"to_tsvector": true, "to_tsquery": true, "plainto_tsquery": true, "phraseto_tsquery": true,
	"websearch_to_tsquery": true, "ts_headline": true, "json_to_tsvector": true, "jsonb_to_tsvector": true,
}

// builtinTSConfigs are the text search configurations initdb creates in
// pg_catalog.
var builtinTSConfigs = map[string]bool{
	"simple": true, "arabic": true, "armenian": true, "basque": true, "catalan": true, "danish": true,
	"dutch": true, "english": true, "finnish": true, "french": true, "german": true, "greek": true,
	"hindi": true, "hungarian": true, "indonesian": true, "irish": true, "italian": true, "lithuanian": true,
	"nepali": true, "norwegian": true, "portuguese": true, "romanian": true, "russian": true, "serbian": true,
	"spanish": true, "swedish": true, "tamil": true, "turkish": true, "yiddish": true,
}

// funcRuleDenied returns why name is denylisted and what to do instead,
// or "".
func funcRuleDenied(name string) (why, hint string) {
	for _, g := range funcRuleDenylist {
		for _, pat := range g.names {
			if funcRuleMatch(pat, name) {
				return g.why, g.hint
			}
		}
	}
	return "", ""
}

func funcRuleMatch(pat, name string) bool {
	prefix := strings.HasSuffix(pat, "*")
	suffix := strings.HasPrefix(pat, "*")
	core := strings.Trim(pat, "*")
	switch {
	case prefix && suffix:
		return strings.Contains(name, core)
	case prefix:
		return strings.HasPrefix(name, core)
	case suffix:
		return strings.HasSuffix(name, core)
	}
	return name == core
}
