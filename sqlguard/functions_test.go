package sqlguard

import (
	"strings"
	"testing"
)

func TestFunctionRule(t *testing.T) {
	t.Parallel()
	rule := FunctionRule{
		Volatility: map[string]byte{
			"lower": 'i', "now": 's', "pg_sleep": 'v', "random": 'v', "gen_random_uuid": 'v',
			"pg_read_file": 'v', "query_to_xml": 's', "pg_get_viewdef": 's', "pg_stat_get_live_tuples": 's',
			"current_setting": 's', "txid_current": 's', "has_table_privilege": 's', "setseed": 'v',
			"pg_relation_filepath": 's', "xpath": 'i', "cursor_to_xmlschema": 's',
		},
		Allowed: map[string]bool{"util.slugify": true, "pg_catalog.pg_sleep": true},
	}
	tests := []struct {
		schema, name string
		ok           bool
	}{
		{"", "lower", true},
		{"pg_catalog", "lower", true},
		{"", "now", true},
		{"", "has_table_privilege", false}, // probes objects outside the scope
		{"", "random", true},
		{"", "gen_random_uuid", true},
		{"", "clock_timestamp", true}, // on the harmless list even when the map lacks it
		{"util", "slugify", true},
		{"", "slugify", false},            // unqualified never reaches util
		{"public", "lower", false},        // only pg_catalog is implicit
		{"pg_temp", "lower", false},       // nor pg_temp
		{"", "pg_sleep", false},           // volatile and denylisted
		{"pg_catalog", "pg_sleep", false}, // Allowed cannot re-allow a denylisted pg_catalog name
		{"", "setseed", false},            // volatile
		{"", "nope", false},               // unknown
		{"", "LOWER", false},              // names are exact, as the parser hands them over
		{"", "pg_read_file", false},
		{"", "query_to_xml", false}, // stable, but reads what its argument names
		{"", "cursor_to_xmlschema", false},
		{"", "pg_get_viewdef", false},
		{"", "pg_stat_get_live_tuples", false},
		{"", "current_setting", false},
		{"", "txid_current", false},
		{"", "pg_relation_filepath", false},
		{"", "xpath", false},
	}
	for _, tt := range tests {
		r := rule.CheckFunction(tt.schema, tt.name)
		if (r == nil) != tt.ok {
			t.Errorf("CheckFunction(%q, %q) = %v, want allowed=%v", tt.schema, tt.name, r, tt.ok)
		}
		if r != nil && (r.Code != "function_not_allowed" || r.Hint == "") {
			t.Errorf("CheckFunction(%q, %q) = %#v", tt.schema, tt.name, r)
		}
	}
	if r := (FunctionRule{}).CheckFunction("", "lower"); r == nil {
		t.Error("an empty rule allowed an unknown function")
	}
}

func TestFunctionRuleDenylist(t *testing.T) {
	t.Parallel()
	denied := []string{
		"pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_ls_waldir", "pg_stat_file", "lo_import", "lo_export",
		"lo_get", "loread", "pg_terminate_backend", "pg_cancel_backend", "pg_advisory_lock", "pg_advisory_xact_lock_shared",
		"pg_try_advisory_lock", "set_config", "current_setting", "dblink", "dblink_exec", "postgres_fdw_get_connections",
		"nextval", "currval", "setval", "lastval", "pg_sleep", "pg_sleep_for", "pg_sleep_until", "query_to_xml",
		"query_to_xmlschema", "query_to_xml_and_xmlschema", "cursor_to_xml", "table_to_xml", "schema_to_xml",
		"database_to_xml", "ts_stat", "ts_rewrite", "pg_stat_get_activity", "pg_stat_reset", "pg_get_viewdef",
		"pg_get_functiondef", "pg_get_indexdef", "pg_relation_filepath", "pg_reload_conf", "pg_rotate_logfile",
		"pg_switch_wal", "pg_create_restore_point", "pg_create_logical_replication_slot", "pg_drop_replication_slot",
		"pg_replication_origin_create", "pg_logical_emit_message", "pg_notify", "pg_promote", "pg_backup_start",
		"txid_current", "pg_current_xact_id", "pg_current_xact_id_if_assigned", "pg_export_snapshot",
		"pg_import_system_collations", "pg_log_backend_memory_contexts", "pg_show_all_settings", "pg_hba_file_rules",
		"pg_sequence_last_value", "pg_mcv_list_items", "obj_description", "pg_prepared_xact", "xmlparse", "xpath",
		"to_regclass", "to_regproc", "has_table_privilege", "has_column_privilege", "pg_has_role", "pg_table_is_visible",
		"pg_relation_size", "pg_total_relation_size", "pg_partition_tree",
		// Catalog lookups, repeated on the denylist so that a rule without
		// the class refuses them too.
		"format_type", "row_security_active", "oidvectortypes", "pg_typeof", "regclassin", "regclassout",
		"regtypein", "regprocedureout", "regoperatorin", "regnamespacein", "regrolein", "regconfigin",
		"aclitemin", "aclexplode", "makeaclitem", "pg_input_is_valid", "pg_input_error_info",
		"pg_available_extensions", "pg_extension_update_paths", "pg_current_snapshot",
	}
	for _, name := range denied {
		if why, _ := funcRuleDenied(name); why == "" {
			t.Errorf("%s is not denylisted", name)
		}
	}
	allowed := []string{"lower", "count", "now", "to_json", "date_trunc", "age", "max", "to_tsvector",
		"random", "jsonb_path_query", "regexp_replace", "regexp_match", "generate_series", "pg_backend_pid", "pg_size_pretty"}
	for _, name := range allowed {
		if why, _ := funcRuleDenied(name); why != "" {
			t.Errorf("%s is denylisted: %s", name, why)
		}
	}
	for _, g := range funcRuleDenylist {
		if g.why == "" || len(g.names) == 0 {
			t.Errorf("denylist group %+v needs a reason and names", g)
		}
		for _, n := range g.names {
			if strings.Trim(n, "*") == "" || strings.Contains(strings.Trim(n, "*"), "*") {
				t.Errorf("bad denylist pattern %q", n)
			}
		}
	}
}

// readTestLookup is the catalog lookup class of a few pg_catalog names, as
// tools/catalog.go loads it from pg_proc (PostgreSQL 15).
func readTestLookup() map[string]LookupForms {
	one := func(n int) ArgCount { return ArgCount{Min: n, Max: n} }
	return map[string]LookupForms{
		"format_type":         {Args: []ArgCount{one(2)}},
		"regclassout":         {Args: []ArgCount{one(1)}},
		"regclassin":          {Args: []ArgCount{one(1)}},
		"int4in":              {Args: []ArgCount{one(1)}},
		"row_security_active": {Args: []ArgCount{one(1)}},
		"pg_get_userbyid":     {Args: []ArgCount{one(1)}},
		"pg_typeof":           {Args: []ArgCount{one(1)}},
		"has_table_privilege": {Args: []ArgCount{one(2), one(3), one(3), one(3)}, Others: true},
		"to_tsvector":         {Args: []ArgCount{one(2), one(2), one(2)}, Others: true},
		"ts_headline":         {Args: []ArgCount{one(3), one(4)}, Others: true},
		"pg_ls_tmpdir":        {Args: []ArgCount{one(1)}, Others: true},
		"lookup_variadic":     {Args: []ArgCount{{Min: 1, Max: -1}}, Others: true},
		"lookup_defaults":     {Args: []ArgCount{{Min: 1, Max: 3}}, Others: true},
		"lookup_any":          {},
	}
}

func TestFunctionRuleCatalogLookup(t *testing.T) {
	t.Parallel()
	rule := FunctionRule{
		Volatility: map[string]byte{
			"format_type": 's', "regclassout": 's', "regclassin": 's', "int4in": 'i', "row_security_active": 's',
			"pg_get_userbyid": 's', "pg_typeof": 's', "has_table_privilege": 's', "to_tsvector": 's',
			"ts_headline": 's', "lookup_variadic": 's', "lookup_defaults": 's', "lookup_any": 's', "lower": 'i',
			"max": 'i', "int8": 'i', "oid": 'i',
		},
		CatalogLookup: readTestLookup(),
	}
	tests := []struct {
		name  string
		nargs int
		ok    bool
	}{
		{"format_type", 2, false},
		{"format_type", 1, false}, // no such overload, but PostgreSQL says so, not the guard
		{"format_type", -1, false},
		{"regclassout", 1, false},
		{"regclassin", 1, false},
		{"int4in", 1, false}, // a type input function
		{"row_security_active", 1, false},
		{"pg_get_userbyid", 1, false},
		{"pg_typeof", 1, false},
		{"has_table_privilege", 2, false}, // denylisted as well
		{"to_tsvector", 2, false},         // to_tsvector(regconfig, text)
		{"to_tsvector", 1, true},          // to_tsvector(text): the default configuration
		{"to_tsvector", -1, false},        // by name alone the class wins
		{"ts_headline", 2, true},
		{"ts_headline", 3, false},
		{"ts_headline", 4, false},
		{"lookup_variadic", 0, true},
		{"lookup_variadic", 1, false},
		{"lookup_variadic", 9, false},
		{"lookup_defaults", 0, true},
		{"lookup_defaults", 2, false},
		{"lookup_defaults", 4, true},
		{"lookup_any", 0, false}, // listed without counts: refused whatever the call passes
		{"lookup_any", 7, false},
		{"lower", 1, true},
		{"max", 1, true}, // max(oid) is an aggregate: not in the class
		{"int8", 1, true},
		{"oid", 1, true},
	}
	for _, tt := range tests {
		for _, schema := range []string{"", "pg_catalog"} {
			r := rule.CheckCall(schema, tt.name, tt.nargs)
			if (r == nil) != tt.ok {
				t.Errorf("CheckCall(%q, %q, %d) = %v, want allowed=%v", schema, tt.name, tt.nargs, r, tt.ok)
				continue
			}
			if r != nil && (r.Code != "function_not_allowed" || r.Hint == "" || !strings.Contains(r.Reason, tt.name)) {
				t.Errorf("CheckCall(%q, %q, %d) = %#v", schema, tt.name, tt.nargs, r)
			}
		}
		if tt.nargs < 0 {
			if got, want := rule.CheckFunction("", tt.name), rule.CheckCall("", tt.name, -1); (got == nil) != (want == nil) {
				t.Errorf("CheckFunction(%q) = %v, CheckCall(..., -1) = %v", tt.name, got, want)
			}
		}
	}
	// A name the denylist does not know gets the class's refusal, and a
	// partly refused name says that other forms exist.
	r := rule.CheckCall("", "format_type", 2)
	if r == nil || r.Reason != "function format_type is not allowed: it looks up catalog objects by oid or name" || r.Hint != funcRuleLookupHint {
		t.Errorf("format_type refusal = %#v", r)
	}
	r = rule.CheckCall("", "to_tsvector", 2)
	if r == nil || !strings.Contains(r.Hint, "forms of to_tsvector without an argument that names a catalog object are allowed") {
		t.Errorf("to_tsvector refusal = %#v", r)
	}
	// CheckFunction never sees the arguments, so it refuses every name
	// with a lookup form.
	for name := range rule.CatalogLookup {
		if rule.CheckFunction("", name) == nil {
			t.Errorf("CheckFunction(%q) allowed a name with a catalog lookup form", name)
		}
	}
	// Another schema's function is decided by Allowed alone.
	rule.Allowed = map[string]bool{"util.format_type": true}
	if r := rule.CheckCall("util", "format_type", 2); r != nil {
		t.Errorf("util.format_type: %v", r)
	}
	// The zero value still works: no class, the denylist alone.
	if r := (FunctionRule{Volatility: map[string]byte{"to_tsvector": 's'}}).CheckCall("", "to_tsvector", 2); r != nil {
		t.Errorf("a rule without the class refused to_tsvector: %v", r)
	}
	if r := (FunctionRule{Volatility: map[string]byte{"format_type": 's'}}).CheckCall("", "format_type", 2); r == nil {
		t.Error("a rule without the class allowed format_type, which the denylist names")
	}
}
