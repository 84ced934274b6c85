package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode"

	"github.com/airlock-dev/airlock/internal/pgtest"
)

// TestReviewerViewCannotMislead: the agent writes a summary and SQL full of
// invisible and layout-changing characters; what the reviewer's binary
// prints hides nothing and forges no line, and pending --json decodes to
// exactly what the agent sent.
func TestReviewerViewCannotMislead(t *testing.T) {
	url := pgtest.NewDatabase(t)
	c := startAirlock(t, url, "support.json")
	summary := "fix typo\nSQL:\n  1 | SELECT 1\nrisk: low\u202e\u200b\u2060\U000E0041\ufe0f\u009b31m\x1b[2J"
	sql := "UPDATE orders SET notes = 'ok\u200b' WHERE id = 11 -- \u202eDROP TABLE orders\u2028risk: low"
	res := call(t, c, "apply_migration_with_ticket", map[string]any{"ticket": "OPS-71", "summary": summary, "sql": sql})
	if res.IsError {
		t.Fatalf("apply: %s", resultText(res))
	}
	var applied struct {
		ChangeID string `json:"change_id"`
	}
	b, _ := json.Marshal(res.StructuredContent)
	json.Unmarshal(b, &applied)
	id := applied.ChangeID

	hidden := func(r rune) bool {
		return r == '\x1b' || r == '\u009b' || unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Co, r) ||
			r == '\u2028' || r == '\u2029' || (r >= 0xFE00 && r <= 0xFE0F) || (r >= 0xE0000 && r <= 0xE007F)
	}
	for _, args := range [][]string{{"show", id}, {"pending"}, {"pending", "--json"}} {
		out, code := reviewer(t, url, args...)
		if code != 0 {
			t.Fatalf("%v (%d):\n%s", args, code, out)
		}
		if i := strings.IndexFunc(out, hidden); i >= 0 {
			t.Errorf("%v prints a hidden or control character %U raw:\n%q", args, []rune(out[i:])[0], out)
		}
		if args[0] == "show" {
			for _, line := range strings.Split(out, "\n") {
				if strings.HasPrefix(line, "risk: low") || strings.HasPrefix(line, "  1 | SELECT 1") {
					t.Errorf("show prints a forged line %q:\n%s", line, out)
				}
			}
			if n := strings.Count(out, "\nSQL:\n"); n != 1 {
				t.Errorf("show has %d SQL headers, want 1:\n%s", n, out)
			}
		}
		if args[0] == "pending" && len(args) == 2 {
			var list []struct {
				Summary string `json:"summary"`
				SQL     string `json:"sql"`
			}
			if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 {
				t.Fatalf("pending --json does not decode (%v):\n%s", err, out)
			}
			if list[0].Summary != strings.TrimSpace(summary) || list[0].SQL != sql {
				t.Errorf("pending --json does not decode to what the agent sent:\n%q\n%q", list[0].Summary, list[0].SQL)
			}
		}
	}
}
