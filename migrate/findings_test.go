package migrate

import (
	"testing"

	"github.com/airlock-dev/airlock/sqlguard"
)

func TestRisk(t *testing.T) {
	f := func(code, level string) sqlguard.Finding {
		return sqlguard.Finding{Code: code, Level: level}
	}
	tests := []struct {
		name     string
		kinds    []string
		findings []sqlguard.Finding
		want     Risk
	}{
		{"insert", []string{"insert"}, nil, RiskLow},
		{"create table and index", []string{"create_table", "create_index"}, []sqlguard.Finding{f("PG101", "info")}, RiskLow},
		{"update", []string{"update"}, nil, RiskModerate},
		{"drop index", []string{"drop_index"}, nil, RiskModerate},
		{"alter table family", []string{"add_column"}, nil, RiskModerate},
		{"unknown kind", []string{"something_new"}, nil, RiskModerate},
		{"a warning", []string{"insert"}, []sqlguard.Finding{f("BC101", "warning")}, RiskModerate},
		{"drop table", []string{"drop_table"}, nil, RiskHigh},
		{"truncate", []string{"insert", "truncate"}, nil, RiskHigh},
		{"drop column", []string{"drop_column"}, nil, RiskHigh},
		{"a danger finding", []string{"insert"}, []sqlguard.Finding{f("DL101", "danger")}, RiskHigh},
		{"rows above threshold raise low", []string{"insert"}, []sqlguard.Finding{f("RA101", "warning")}, RiskHigh},
		{"lock on a large table raises", []string{"add_column"}, []sqlguard.Finding{f("LK101", "warning")}, RiskHigh},
		{"small rewrite does not raise", []string{"add_column"}, []sqlguard.Finding{f("RW101", "warning")}, RiskModerate},
		{"large rewrite", []string{"add_column"}, []sqlguard.Finding{f("RW101", "danger")}, RiskHigh},
		{"raise caps at high", []string{"drop_table"}, []sqlguard.Finding{f("LK101", "warning")}, RiskHigh},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &sqlguard.MigrationPlan{}
			for _, k := range tt.kinds {
				p.Statements = append(p.Statements, sqlguard.MigrationStatement{Kind: k})
			}
			if got := risk(p, tt.findings); got != tt.want {
				t.Errorf("risk = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestRiskUsesEveryAlterKind(t *testing.T) {
	p := &sqlguard.MigrationPlan{Statements: []sqlguard.MigrationStatement{
		{Kind: "add_column", Kinds: []string{"drop_column", "add_column"}},
	}}
	if got := risk(p, nil); got != RiskHigh {
		t.Errorf("risk = %s, want high for an ALTER TABLE that also drops a column", got)
	}
}

func TestRuntimeFindingsDocumented(t *testing.T) {
	for _, code := range []string{"LK101", "RW101", "PG101", "PG303", "PG305", "RA101", "DS105"} {
		d, ok := RuntimeFindings[code]
		if !ok || d.Title == "" || d.Fix == "" {
			t.Errorf("%s is not documented: %+v", code, d)
		}
	}
}
