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
	}
	for _, name := range denied {
		if why, _ := funcRuleDenied(name); why == "" {
			t.Errorf("%s is not denylisted", name)
		}
	}
	allowed := []string{"lower", "count", "now", "to_json", "pg_typeof", "date_trunc",
		"random", "jsonb_path_query", "regexp_replace", "generate_series", "pg_backend_pid", "pg_size_pretty"}
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
