package scopes

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const testdata = "../testdata/scopes"

func TestLoadSupport(t *testing.T) {
	t.Parallel()
	got, err := Load(filepath.Join(testdata, "support.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := &Scope{
		Name:     "support",
		Database: Database{URLEnv: "AIRLOCK_DATABASE_URL"},
		Read: Read{
			Tables: map[string]TableRule{
				"public.customers": {
					Columns: []string{"id", "tenant_id", "name", "email", "phone", "plan", "balance", "signed_up_at", "last_login", "is_active", "metadata", "avatar", "big_counter"},
					Mask:    []string{"email", "phone"},
				},
				"public.orders":   {},
				"public.invoices": {},
				"public.products": {},
			},
			MaxRows:            500,
			StatementTimeoutMS: DefaultStatementTimeoutMS,
			LockTimeoutMS:      DefaultLockTimeoutMS,
			MaxBytes:           DefaultMaxBytes,
			MaxCellBytes:       DefaultMaxCellBytes,
			MaxSQLBytes:        DefaultMaxSQLBytes,
			SearchPath:         []string{"public"},
		},
		Write: &Write{
			Mode:                 "replay",
			Tables:               []string{"public.orders", "public.invoices", "public.orders_archive"},
			Allow:                []string{"insert", "update", "delete", "create_index", "add_column", "create_table", "drop_table", "drop_column", "set_not_null", "add_constraint", "alter_column_type", "rename", "truncate"},
			TicketPattern:        "^[A-Z]+-[0-9]+$",
			ReviewTTL:            30 * time.Minute,
			StatementTimeoutMS:   DefaultWriteTimeoutMS,
			LockTimeoutMS:        DefaultWriteLockTimeoutMS,
			LargeTableRows:       DefaultLargeTableRows,
			RowsAffectedWarn:     DefaultRowsAffectedWarn,
			MaxPending:           DefaultMaxPending,
			MaxPendingPerSession: DefaultMaxPendingPerSession,
			Approvals:            DefaultApprovals,
			Undo:                 &Undo{Retention: DefaultUndoRetention},
			OwnTables:            true,
		},
	}
	raw, _ := os.ReadFile(filepath.Join(testdata, "support.json"))
	if !bytes.Equal(got.Source(), raw) || len(got.Version()) != 16 {
		t.Errorf("Source/Version: %q %q", got.Source(), got.Version())
	}
	got.source = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load(support.json) =\n%+v\nwant\n%+v", got, want)
	}
}

func TestLoadValid(t *testing.T) {
	t.Parallel()
	allTools := []string{ToolQueryReadonly, ToolListTables, ToolDescribeTable, ToolMigrateDryRun, ToolApplyMigration, ToolChangeStatus}
	readTools := allTools[:3]
	tests := []struct {
		file      string
		name      string
		mode      string // "" for no write section
		tables    int
		tools     []string
		ssnAccess Access
	}{
		{"support.json", "support", "replay", 4, allTools, ColumnDenied},
		{"readonly.json", "readonly", "", 4, readTools, ColumnDenied},
		{"prepared.json", "prepared", "prepared", 4, allTools, ColumnDenied},
		{"minimal.json", "minimal", "", 1, []string{ToolQueryReadonly, ToolListTables}, ColumnDenied},
		// The example scope of the design document, copied verbatim.
		{"design_example.json", "support-agent", "replay", 2, allTools, ColumnDenied},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			s, err := Load(filepath.Join(testdata, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if s.Name != tt.name {
				t.Errorf("Name = %q, want %q", s.Name, tt.name)
			}
			mode := ""
			if s.Write != nil {
				mode = string(s.Write.Mode)
			}
			if mode != tt.mode {
				t.Errorf("write mode = %q, want %q", mode, tt.mode)
			}
			if len(s.Read.Tables) != tt.tables {
				t.Errorf("%d read tables, want %d", len(s.Read.Tables), tt.tables)
			}
			if got := s.EnabledTools(); !reflect.DeepEqual(got, tt.tools) {
				t.Errorf("EnabledTools() = %v, want %v", got, tt.tools)
			}
			if _, ok := s.TableRule("public.secrets"); ok {
				t.Error("public.secrets is readable")
			}
			if s.Read.MaxRows == 0 || s.Read.MaxSQLBytes == 0 || s.URLEnv() != DefaultURLEnv {
				t.Errorf("defaults not applied: %+v", s.Read)
			}
		})
	}
}

func TestLoadInvalid(t *testing.T) {
	t.Parallel()
	const anchored = "must be anchored: start it with ^ and end it with $ so that the whole ticket has to match"
	const topLevelFields = "unknown field; allowed here: $schema, database, name, read, tools, write"
	tests := []struct {
		file string
		want []Problem
	}{
		{"unknown_top_level_field.json", []Problem{
			{"$.read_only", topLevelFields},
		}},
		{"unknown_nested_field.json", []Problem{
			{`$.read.tables["public.customers"].colums`, "unknown field; allowed here: columns, mask, row_filter"},
		}},
		{"wrong_type.json", []Problem{
			{"$.read.max_rows", "must be an integer, not a string"},
		}},
		{"bad_mode.json", []Problem{
			{"$.write.mode", `must be one of "replay", "prepared", "branch"`},
		}},
		{"mask_not_in_columns.json", []Problem{
			{`$.read.tables["public.customers"].mask[1]`, `"ssn" is not in columns; a masked column must also be listed in columns`},
		}},
		{"bad_regexp.json", []Problem{
			{"$.write.ticket_pattern", "not a valid Go regular expression: error parsing regexp: missing closing ): `^([A-Z]+-[0-9]+$`"},
		}},
		{"unanchored_pattern.json", []Problem{
			{"$.write.ticket_pattern", anchored},
		}},
		{"bad_ttl.json", []Problem{
			{"$.write.review_ttl", `must be a Go duration such as "30m" or "2h" (units h, m, s, ms, us, ns; there is no d: write "168h" for 7 days)`},
		}},
		{"ttl_out_of_range.json", []Problem{
			{"$.write.review_ttl", "must be between 1m and 168h (7 days)"},
		}},
		{"bad_table_key.json", []Problem{
			{"$.read.tables.customers", `invalid key: must be a lower-case "schema.name" such as "public.orders"`},
		}},
		{"disabled_everything.json", []Problem{
			{"$.tools.disable", "disables every read tool, and without a write section no write tool is listed; the agent would have none"},
		}},
		{"syntax_error.json", []Problem{
			{"$", "invalid JSON at line 5, column 3: invalid character '}' looking for beginning of object key string"},
		}},
		{"missing_required.json", []Problem{
			{"$.name", "is required"},
			{"$.read", "is required"},
		}},
		{"incomplete_write.json", []Problem{
			{"$.write.allow[1]", `must be one of "create_table", "drop_table", "add_column", "drop_column", "alter_column_type", "set_not_null", "drop_not_null", "set_default", "drop_default", "add_constraint", "drop_constraint", "validate_constraint", "create_index", "drop_index", "rename", "insert", "update", "delete", "truncate", "create_view", "drop_view", "comment", "do", "call"`},
			{"$.write.tables", "must not be empty"},
			{"$.write.ticket_pattern", "is required"},
		}},
		{"duplicate_key.json", []Problem{
			{`$.read.tables["public.customers"]`, "appears more than once in the same object"},
		}},
		// Every kind of problem at once, in path order.
		{"many_problems.json", []Problem{
			{"$.audit", topLevelFields},
			{"$.database.url_env", "must be an environment variable name such as AIRLOCK_DATABASE_URL"},
			{"$.name", "must start with a lower-case letter followed by at most 39 of a-z, 0-9, _ and -"},
			{"$.read.max_bytes", "must be at most 67108864"},
			{"$.read.max_rows", "must be at least 1"},
			{"$.read.search_path[1]", "repeats [0]; entries must be unique"},
			{`$.read.tables["public.customers"].mask[0]`, `"ssn" is not in columns; a masked column must also be listed in columns`},
			{`$.read.tables["public.orders"].columns`, "must not be empty"},
			{"$.tools.disable[0]", `must be one of "query_readonly", "list_tables", "describe_table", "migrate_dry_run", "apply_migration_with_ticket", "get_change_status"`},
			{"$.write.allow[2]", "repeats [0]; entries must be unique"},
			{"$.write.lock_timeout_ms", "must be an integer, not a fraction"},
			{"$.write.review_ttl", "must be between 1m and 168h (7 days)"},
			{"$.write.tables[2]", "repeats [0]; entries must be unique"},
			{"$.write.ticket_pattern", anchored},
		}},
	}
	files, err := filepath.Glob(filepath.Join(testdata, "invalid", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(tests) {
		t.Errorf("%d files in testdata/scopes/invalid, %d test cases: keep them in step", len(files), len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(testdata, "invalid", tt.file)
			s, err := Load(path)
			if s != nil {
				t.Errorf("Load returned a scope: %+v", s)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Load error %v (%T) holds no *ValidationError", err, err)
			}
			if !reflect.DeepEqual(ve.Problems, tt.want) {
				t.Errorf("problems:\n%s\nwant:\n%s", (&ValidationError{ve.Problems}).Error(), (&ValidationError{tt.want}).Error())
			}
			if !strings.HasPrefix(err.Error(), "load scope "+path+": ") {
				t.Errorf("error %q does not name the file", err)
			}
			if got, want := FormatProblems(err), ve.Error(); got != want {
				t.Errorf("FormatProblems = %q, want %q", got, want)
			}
		})
	}
}

func TestParseEdgeCases(t *testing.T) {
	t.Parallel()
	const write = `"write": {"tables": ["public.orders"], "allow": ["insert"], "ticket_pattern": "^T-[0-9]+$", `
	tests := []struct {
		name string
		data string
		want []Problem
	}{
		{"empty", " \n", []Problem{{"$", "the file is empty; a scope is a JSON object"}}},
		{"null", "null", []Problem{{"$", "must be an object, not null"}}},
		{"array", "[]", []Problem{{"$", "must be an object, not an array"}}},
		{"truncated", "{\n  \"name\": \"x\"", []Problem{{"$", "invalid JSON at line 2, column 14: unexpected end of JSON input"}}},
		{"trailing data", `{} {}`, []Problem{{"$", "invalid JSON at line 1, column 4: invalid character '{' after top-level value"}}},
		{"column counts runes", "{\"name\": \"é\" x}", []Problem{{"$", "invalid JSON at line 1, column 14: invalid character 'x' after object key:value pair"}}},
		{"read without tables", `{"name": "x", "read": {}}`, []Problem{{"$.read.tables", "is required"}}},
		{"exponent integer", `{"name": "x", "read": {"tables": {"public.orders": {}}}, ` + write + `"lock_timeout_ms": 1e3}}`,
			[]Problem{{"$.write.lock_timeout_ms", "must be a whole number written without a fraction or exponent"}}},
		{"numeric key is not an index", `{"name": "x", "read": {"tables": {"0": {}}}}`,
			[]Problem{{`$.read.tables["0"]`, `invalid key: must be a lower-case "schema.name" such as "public.orders"`}}},
		{"write tools alone are enough", `{"name": "x", "read": {"tables": {"public.orders": {}}}, ` + write + `"mode": "branch"},
			"tools": {"disable": ["query_readonly", "list_tables", "describe_table"]}}`, nil},
		{"all tools off with write", `{"name": "x", "read": {"tables": {"public.orders": {}}}, ` + write + `"mode": "branch"},
			"tools": {"disable": ["query_readonly", "list_tables", "describe_table", "migrate_dry_run", "apply_migration_with_ticket", "get_change_status"]}}`,
			[]Problem{{"$.tools.disable", "disables every tool; the agent would have none"}}},
		{"schema field for editors", `{"$schema": "./schema.json", "name": "x", "read": {"tables": {"public.orders": {}}}}`, nil},
		{"wrong-typed write skips semantic noise", `{"name": "x", "read": {"tables": {"public.orders": {}}}, "write": {"tables": ["public.orders"], "allow": ["insert"], "ticket_pattern": 7, "review_ttl": 30}}`,
			[]Problem{
				{"$.write.review_ttl", "must be a string, not an integer"},
				{"$.write.ticket_pattern", "must be a string, not an integer"},
			}},
		{"paths sort numerically", `{"name": "x", "read": {"tables": {"public.orders": {"columns": ["a"], "mask": ["b0", "b1", "b2", "b3", "b4", "b5", "b6", "b7", "b8", "b9", "b10", "b11"]}}}}`,
			maskProblems(12)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := Parse([]byte(tt.data))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			if s != nil {
				t.Errorf("Parse returned a scope: %+v", s)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Parse error %v (%T) is no *ValidationError", err, err)
			}
			if !reflect.DeepEqual(ve.Problems, tt.want) {
				t.Errorf("problems:\n%s\nwant:\n%s", ve.Error(), (&ValidationError{tt.want}).Error())
			}
		})
	}
}

// maskProblems lists the problems of masked columns b0...b(n-1) that are
// not in columns, in the order Parse must report them: [10] after [9].
func maskProblems(n int) []Problem {
	var ps []Problem
	for i := range n {
		ps = append(ps, Problem{
			Path:    fmt.Sprintf(`$.read.tables["public.orders"].mask[%d]`, i),
			Message: fmt.Sprintf(`"b%d" is not in columns; a masked column must also be listed in columns`, i),
		})
	}
	return ps
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	_, err := Load(filepath.Join(t.TempDir(), "nope.json"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load of a missing file: %v, want os.ErrNotExist", err)
	}
	var ve *ValidationError
	if errors.As(err, &ve) {
		t.Errorf("a missing file is reported as a validation error")
	}
	if got := FormatProblems(err); got != err.Error() {
		t.Errorf("FormatProblems = %q, want %q", got, err.Error())
	}
}

func TestTicketPatternAnchoring(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern  string
		anchored bool
	}{
		{`^[A-Z]+-[0-9]+$`, true},
		{`\A[A-Z]+-[0-9]+\z`, true},
		{`^(OPS|SEC)-[0-9]+$`, true},
		{`(^OPS-[0-9]+$)`, true},
		{`^OPS-[0-9]+$|^SEC-[0-9]+$`, true},
		{`^(?:OPS|SEC)-[0-9]+$`, true},
		{`[A-Z]+-[0-9]+`, false},
		{`^[A-Z]+-[0-9]+`, false},
		{`[A-Z]+-[0-9]+$`, false},
		{`^OPS-[0-9]+|SEC-[0-9]+$`, false},
		{`(?m)^[A-Z]+-[0-9]+$`, false},
		{`^[A-Z]+-[0-9]+$|x`, false},
	}
	for _, tt := range tests {
		var ps problems
		checkTicketPattern(&ps, nil, tt.pattern)
		if got := len(ps) == 0; got != tt.anchored {
			t.Errorf("%q: anchored = %v, want %v (%v)", tt.pattern, got, tt.anchored, ps)
		}
	}
}
