package scopes

import (
	"reflect"
	"testing"
)

func TestToolEnabled(t *testing.T) {
	t.Parallel()
	write := &Write{Tables: []string{"public.orders"}, Allow: []string{"insert"}, TicketPattern: "^T-[0-9]+$"}
	tests := []struct {
		name    string
		scope   Scope
		enabled []string
	}{
		{"read only", Scope{}, []string{ToolQueryReadonly, ToolListTables, ToolDescribeTable}},
		{"with write", Scope{Write: write}, []string{ToolQueryReadonly, ToolListTables, ToolDescribeTable, ToolMigrateDryRun, ToolApplyMigration, ToolChangeStatus}},
		{"disabled read tool", Scope{Tools: Tools{Disable: []string{ToolDescribeTable}}}, []string{ToolQueryReadonly, ToolListTables}},
		{"disabled write tools", Scope{Write: write, Tools: Tools{Disable: []string{ToolApplyMigration, ToolQueryReadonly}}}, []string{ToolListTables, ToolDescribeTable, ToolMigrateDryRun, ToolChangeStatus}},
		{"disabling a write tool without write", Scope{Tools: Tools{Disable: []string{ToolMigrateDryRun}}}, []string{ToolQueryReadonly, ToolListTables, ToolDescribeTable}},
		{"unknown disabled name is harmless", Scope{Tools: Tools{Disable: []string{"execute_sql"}}}, []string{ToolQueryReadonly, ToolListTables, ToolDescribeTable}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.scope.EnabledTools(); !reflect.DeepEqual(got, tt.enabled) {
				t.Errorf("EnabledTools() = %v, want %v", got, tt.enabled)
			}
			for _, name := range append(allTools, "execute_sql", "") {
				want := false
				for _, e := range tt.enabled {
					want = want || e == name
				}
				if got := tt.scope.ToolEnabled(name); got != want {
					t.Errorf("ToolEnabled(%q) = %v, want %v", name, got, want)
				}
			}
		})
	}
}

func TestColumnAccess(t *testing.T) {
	t.Parallel()
	limited := TableRule{Columns: []string{"id", "name", "email"}, Mask: []string{"email"}}
	open := TableRule{}
	maskedOnly := TableRule{Mask: []string{"email"}}
	tests := []struct {
		rule TableRule
		col  string
		want Access
	}{
		{limited, "id", ColumnAllowed},
		{limited, "email", ColumnMasked},
		{limited, "ssn", ColumnDenied},
		{limited, "ID", ColumnDenied},
		{limited, "", ColumnDenied},
		{open, "ssn", ColumnAllowed},
		{maskedOnly, "ssn", ColumnAllowed},
		{maskedOnly, "email", ColumnMasked},
		{TableRule{Columns: []string{}}, "id", ColumnDenied},
	}
	for _, tt := range tests {
		if got := tt.rule.ColumnAccess(tt.col); got != tt.want {
			t.Errorf("%+v.ColumnAccess(%q) = %v, want %v", tt.rule, tt.col, got, tt.want)
		}
	}
	var zero Access
	if zero != ColumnDenied {
		t.Error("the zero Access must deny")
	}
	for rule, want := range map[*TableRule]bool{&limited: true, &open: false, &maskedOnly: true} {
		if got := rule.Restricted(); got != want {
			t.Errorf("%+v.Restricted() = %v, want %v", *rule, got, want)
		}
	}
}

func TestTableRule(t *testing.T) {
	t.Parallel()
	s := &Scope{Read: Read{Tables: map[string]TableRule{
		"public.customers": {Columns: []string{"id"}},
		"public.orders":    {},
	}}}
	tests := []struct {
		table string
		ok    bool
	}{
		{"public.customers", true},
		{"public.orders", true},
		{"customers", false},
		{"public.secrets", false},
		{"internal.api_keys", false},
		{"Public.Customers", false},
	}
	for _, tt := range tests {
		if _, ok := s.TableRule(tt.table); ok != tt.ok {
			t.Errorf("TableRule(%q) ok = %v, want %v", tt.table, ok, tt.ok)
		}
	}
}

func TestWritePolicy(t *testing.T) {
	t.Parallel()
	w := &Write{
		Tables:        []string{"public.orders", "public.invoices"},
		Allow:         []string{"insert", "create_index"},
		TicketPattern: "^[A-Z]+-[0-9]+$",
	}
	var none *Write
	tests := []struct {
		name string
		got  bool
		want bool
	}{
		{"allows insert", w.Allows("insert"), true},
		{"allows create_index", w.Allows("create_index"), true},
		{"refuses drop_table", w.Allows("drop_table"), false},
		{"refuses empty kind", w.Allows(""), false},
		{"nil allows nothing", none.Allows("insert"), false},
		{"writes orders", w.WritesTable("public.orders"), true},
		{"does not write customers", w.WritesTable("public.customers"), false},
		{"does not write unqualified", w.WritesTable("orders"), false},
		{"nil writes nothing", none.WritesTable("public.orders"), false},
		{"ticket ok", w.TicketOK("OPS-42"), true},
		{"ticket lower case", w.TicketOK("ops-42"), false},
		{"ticket with suffix", w.TicketOK("OPS-42; DROP TABLE x"), false},
		{"ticket with newline", w.TicketOK("OPS-42\n"), false},
		{"empty ticket", w.TicketOK(""), false},
		{"empty pattern", (&Write{TicketPattern: ""}).TicketOK("OPS-1"), false},
		{"pattern matching empty still needs a ticket", (&Write{TicketPattern: "^.*$"}).TicketOK(""), false},
		{"broken pattern", (&Write{TicketPattern: "^(OPS$"}).TicketOK("OPS"), false},
		{"nil accepts no ticket", none.TicketOK("OPS-42"), false},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

func TestURLEnv(t *testing.T) {
	t.Parallel()
	if got := (&Scope{}).URLEnv(); got != DefaultURLEnv {
		t.Errorf("URLEnv() = %q, want %q", got, DefaultURLEnv)
	}
	s := &Scope{Database: Database{URLEnv: "SUPPORT_DB"}}
	if got := s.URLEnv(); got != "SUPPORT_DB" {
		t.Errorf("URLEnv() = %q, want SUPPORT_DB", got)
	}
}

func TestRoleNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name            string
		scope           Scope
		wantRead, wantW string
	}{
		{"defaults", Scope{Name: "support"}, "airlock_support_read", "airlock_support_write"},
		{"dashes become underscores", Scope{Name: "support-agent-2"}, "airlock_support_agent_2_read", "airlock_support_agent_2_write"},
		{"explicit", Scope{Name: "x", Read: Read{Role: "r1"}, Write: &Write{Role: "w1"}}, "r1", "w1"},
		{"write role without write section", Scope{Name: "x", Read: Read{Role: "r1"}}, "r1", "airlock_x_write"},
	}
	for _, tt := range tests {
		if got := tt.scope.ReadRole(); got != tt.wantRead {
			t.Errorf("%s: ReadRole() = %q, want %q", tt.name, got, tt.wantRead)
		}
		if got := tt.scope.WriteRole(); got != tt.wantW {
			t.Errorf("%s: WriteRole() = %q, want %q", tt.name, got, tt.wantW)
		}
	}
}
