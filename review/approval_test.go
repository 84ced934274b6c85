package review

import (
	"testing"

	"github.com/airlock-dev/airlock/migrate"
	"github.com/airlock-dev/airlock/sqlguard"
)

// TestApprovalHashCovers: every field airlock show displays that decides
// what runs or why changes the approval hash.
func TestApprovalHashCovers(t *testing.T) {
	base := func() *Change {
		return &Change{
			ID: "7b0d4f3e-4a43-4a0c-9d51-1d0d2b8f5a01", Ticket: "OPS-1", Summary: "fix", SQL: "UPDATE t SET a = 1 WHERE id = 1",
			Statements: []sqlguard.MigrationStatement{{SQL: "UPDATE t SET a = 1 WHERE id = 1",
				QualifiedSQL: "UPDATE public.t SET a = 1 WHERE id = 1", Kind: "update", Targets: []string{"public.t"}}},
			Scope: "support", ScopeVersion: "v1", Mode: ModeReplay,
			Effects: migrate.Effects{RowsAffected: []int64{1}, Rows: []migrate.RowsEffect{{Columns: []string{"id", "a"}, Salt: "00", Hash: "aa"}}},
		}
	}
	want := base().ApprovalHash()
	if base().ApprovalHash() != want {
		t.Fatal("the hash is not deterministic")
	}
	for name, edit := range map[string]func(*Change){
		"ticket":        func(c *Change) { c.Ticket = "OPS-2" },
		"summary":       func(c *Change) { c.Summary = "fix\u200b" },
		"sql":           func(c *Change) { c.SQL += " " },
		"executed":      func(c *Change) { c.Statements[0].QualifiedSQL = "DELETE FROM public.t" },
		"kind":          func(c *Change) { c.Statements[0].Kind = "delete" },
		"targets":       func(c *Change) { c.Statements[0].Targets = []string{"public.u"} },
		"scope":         func(c *Change) { c.Scope = "other" },
		"scope version": func(c *Change) { c.ScopeVersion = "v2" },
		"mode":          func(c *Change) { c.Mode = ModePrepared },
		"rows affected": func(c *Change) { c.Effects.RowsAffected[0] = 2 },
		"row image":     func(c *Change) { c.Effects.Rows[0].Hash = "ab" },
		"statements":    func(c *Change) { c.Statements = append(c.Statements, c.Statements[0]) },
	} {
		c := base()
		edit(c)
		if c.ApprovalHash() == want {
			t.Errorf("changing the %s leaves the approval hash as it was", name)
		}
	}
}

func TestMatchesApproval(t *testing.T) {
	h := anyApprovalHash()
	for _, tt := range []struct {
		expect string
		ok     bool
	}{
		{h, true},
		{"sha256:" + h, true},
		{h[:16], true},
		{"  " + h[:20] + "\n", true},
		{h[:15], false},
		{"", false},
		{h[:16] + "x", false},
	} {
		if got := matchesApproval(h, tt.expect); got != tt.ok {
			t.Errorf("matchesApproval(%q) = %v, want %v", tt.expect, got, tt.ok)
		}
	}
}

func anyApprovalHash() string { return (&Change{ID: "x"}).ApprovalHash() }
