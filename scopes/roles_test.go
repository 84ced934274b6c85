package scopes

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestParseRoleFields(t *testing.T) {
	t.Parallel()
	s, err := Parse([]byte(`{
		"name": "tenant-two",
		"read": {"role": "t2_reader", "tables": {"public.customers": {"columns": ["id", "tenant_id"], "row_filter": "tenant_id = 2"}}},
		"write": {"role": "t2_writer", "tables": ["public.orders"], "allow": ["insert"], "ticket_pattern": "^T-[0-9]+$"}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	if s.ReadRole() != "t2_reader" || s.WriteRole() != "t2_writer" {
		t.Errorf("roles = %q, %q", s.ReadRole(), s.WriteRole())
	}
	if got := s.Read.Tables["public.customers"].RowFilter; got != "tenant_id = 2" {
		t.Errorf("row_filter = %q", got)
	}
}

func TestParseRoleFieldsInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, doc, wantPath, wantMsg string
	}{
		{"unknown field next to row_filter",
			`{"name": "x", "read": {"tables": {"public.t": {"row_filtr": "a = 1"}}}}`,
			`$.read.tables["public.t"].row_filtr`, "allowed here: columns, mask, row_filter"},
		{"empty row_filter",
			`{"name": "x", "read": {"tables": {"public.t": {"row_filter": ""}}}}`,
			`$.read.tables["public.t"].row_filter`, "must not be empty"},
		{"role not an identifier",
			`{"name": "x", "read": {"role": "Bad Role", "tables": {}}}`,
			`$.read.role`, "lower-case identifier"},
		{"write role wrong type",
			`{"name": "x", "read": {"tables": {}}, "write": {"role": 3, "tables": ["public.t"], "allow": ["insert"], "ticket_pattern": "^a$"}}`,
			`$.write.role`, "string"},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.doc))
		if err == nil {
			t.Errorf("%s: accepted", tt.name)
			continue
		}
		text := FormatProblems(err)
		if !strings.Contains(text, tt.wantPath) || !strings.Contains(text, tt.wantMsg) {
			t.Errorf("%s: got\n%s\nwant %s: ...%s...", tt.name, text, tt.wantPath, tt.wantMsg)
		}
	}
}

func TestLoadRowFilterExample(t *testing.T) {
	t.Parallel()
	s, err := Load(filepath.Join(testdata, "row_filter.json"))
	if err != nil {
		t.Fatal(err)
	}
	if s.ReadRole() != "airlock_tenant_two_read" || s.WriteRole() != "airlock_tenant_two_write" {
		t.Errorf("roles = %q, %q", s.ReadRole(), s.WriteRole())
	}
	if got := s.Read.Tables["public.customers"].RowFilter; got != "tenant_id = 2" {
		t.Errorf("row_filter = %q", got)
	}
}
