package scopes

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestBranchSettings(t *testing.T) {
	const head = `{"name": "x", "read": {"tables": {"public.orders": {}}}, "write": {"tables": ["public.orders"], "allow": ["insert"], "ticket_pattern": "^A$", `
	tests := []struct {
		name string
		data string
		want *Branch
		errs []Problem
	}{
		{"defaults", head + `"mode": "branch"}}`, &Branch{Strategy: "template", TTL: 2 * time.Hour, MaxBranches: 5}, nil},
		{"all set", head + `"mode": "branch", "branch": {"strategy": "schema", "sample_rows": 10, "branch_ttl": "30m", "max_branches": 2}}}`,
			&Branch{Strategy: "schema", SampleRows: 10, TTL: 30 * time.Minute, MaxBranches: 2}, nil},
		{"replay has none", head + `"mode": "replay"}}`, nil, nil},
		{"bad ttl", head + `"mode": "branch", "branch": {"branch_ttl": "9000h"}}}`, nil,
			[]Problem{{"$.write.branch.branch_ttl", "must be between 1m and 168h (7 days)"}}},
		{"branch settings without branch mode", head + `"branch": {"strategy": "schema"}}}`, nil,
			[]Problem{{"$.write.branch", `only applies to write.mode "branch"`}}},
		{"unknown strategy", head + `"mode": "branch", "branch": {"strategy": "clone"}}}`, nil,
			[]Problem{{"$.write.branch.strategy", `must be one of "template", "schema"`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse([]byte(tt.data))
			if tt.errs != nil {
				var ve *ValidationError
				if !errors.As(err, &ve) || !reflect.DeepEqual(ve.Problems, tt.errs) {
					t.Fatalf("Parse error %v, want %v", err, tt.errs)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(s.Write.Branch, tt.want) {
				t.Fatalf("branch = %+v, want %+v", s.Write.Branch, tt.want)
			}
		})
	}
}
