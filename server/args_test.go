package server_test

import (
	"strings"
	"testing"

	"github.com/airlock-dev/airlock/tools"
)

// TestArgumentErrors: a call with wrong arguments is refused with a
// message that names the argument, what was expected and what was sent,
// in words (no validator internals), and the server serves on.
func TestArgumentErrors(t *testing.T) {
	h := newHarness(t, "support.json", nil)
	for _, tc := range []struct {
		tool string
		args map[string]any
		want []string
	}{
		{"query_readonly", map[string]any{"sql": 5}, []string{`"sql" must be a string, not an integer (5)`}},
		{"query_readonly", map[string]any{"sql": 1.5}, []string{`"sql" must be a string, not a fraction (1.5)`}},
		{"query_readonly", map[string]any{}, []string{`"sql" is required`}},
		{"query_readonly", map[string]any{"sql": ""}, []string{`"sql" must not be empty`}},
		{"query_readonly", map[string]any{"sql": "SELECT 1", "bogus": true},
			[]string{`"bogus" is not an argument of this tool (it takes sql (string, required), max_rows (integer), params (array))`}},
		{"query_readonly", map[string]any{"sql": "SELECT 1", "max_rows": 0}, []string{`"max_rows" must be at least 1, not 0`}},
		{"query_readonly", map[string]any{"sql": "SELECT 1", "max_rows": "10"}, []string{`"max_rows" must be an integer, not a string ("10")`}},
		{"query_readonly", map[string]any{"sql": "SELECT 1", "params": "x"}, []string{`"params" must be an array, not a string`}},
		{"query_readonly", map[string]any{"sql": "SELECT $1", "params": []any{map[string]any{"a": 1}}}, []string{`"params"[0]`, "not an object"}},
		{"describe_table", map[string]any{"table": ""}, []string{`"table" must not be empty`}},
		{"describe_table", map[string]any{"table": strings.Repeat("x", 300)}, []string{`"table" must be at most 200 characters long`}},
		{"get_change_status", map[string]any{"change_id": 42}, []string{`"change_id" must be a string, not an integer (42)`}},
		{"list_tables", map[string]any{"x": 1}, []string{`"x" is not an argument of this tool (it takes no arguments)`}},
		{"apply_migration_with_ticket", map[string]any{"ticket": "OPS-1"}, []string{`"summary" is required`, `"sql" is required`}},
		{"migrate_dry_run", map[string]any{"sql": []any{"SELECT 1"}}, []string{`"sql" must be a string, not an array`}},
	} {
		res := h.call(tc.tool, tc.args)
		p := tools.ErrorOf(res)
		if !res.IsError || p == nil || p.Code != "bad_arguments" || res.StructuredContent != nil {
			t.Errorf("%s %v: %s", tc.tool, tc.args, text(res))
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(p.Reason, w) {
				t.Errorf("%s %v: reason %q lacks %q", tc.tool, tc.args, p.Reason, w)
			}
		}
		for _, internal := range []string{"&{", "%!", "Got:", "Want:", "<root>"} {
			if strings.Contains(text(res), internal) {
				t.Errorf("%s %v: shows validator internals: %s", tc.tool, tc.args, text(res))
			}
		}
	}
	if res := h.query("SELECT 1 AS ok"); res.IsError {
		t.Fatalf("the server stopped serving: %s", text(res))
	}
}
