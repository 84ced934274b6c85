package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/airlock-dev/airlock/internal/pgtest"
)

// TestBranchFlow: in branch mode the agent's change commits on its own
// branch database (its reads see it, the source does not), then the
// reviewer lists branches and merges one from the CLI.
func TestBranchFlow(t *testing.T) {
	url := pgtest.NewDatabase(t)
	raw, err := os.ReadFile(pgtest.Testdata("scopes", "support.json"))
	if err != nil {
		t.Fatal(err)
	}
	var scope map[string]any
	json.Unmarshal(raw, &scope)
	scope["name"] = "branchy"
	w := scope["write"].(map[string]any)
	w["mode"] = "branch"
	w["branch"] = map[string]any{"strategy": "schema", "sample_rows": 50}
	b, _ := json.Marshal(scope)
	path := filepath.Join(t.TempDir(), "branch.json")
	os.WriteFile(path, b, 0o600)

	c := startAirlock(t, url, path)
	applyChange(t, c, "OPS-31", "UPDATE orders SET status = 'cancelled' WHERE id <= 5")
	res := call(t, c, "query_readonly", map[string]any{"sql": "SELECT count(*) AS n FROM orders WHERE status = 'cancelled' AND id <= 5"})
	if res.IsError || !strings.Contains(resultText(res), "[5]") {
		t.Fatalf("the session does not see its branch: %s", resultText(res))
	}
	if n := count(t, url, "SELECT count(*) FROM orders WHERE status = 'cancelled' AND id <= 5"); n == 5 {
		t.Fatal("the change reached the source before the merge")
	}
	out, code := reviewer(t, url, "branches")
	id := regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`).FindString(out)
	if code != 0 || id == "" {
		t.Fatalf("branches (%d):\n%s", code, out)
	}
	if out, code = reviewer(t, url, "show", id); code != 0 || !strings.Contains(out, "UPDATE orders") {
		t.Fatalf("show branch (%d):\n%s", code, out)
	}
	var branchDB string
	if err := pgtest.Connect(t, url).QueryRow(context.Background(), "SELECT database FROM airlock.branches WHERE id = $1", id).Scan(&branchDB); err != nil {
		t.Fatal(err)
	}
	if out, code = reviewer(t, url, "merge", id, "--reviewer", "alice"); code != 0 {
		t.Fatalf("merge (%d):\n%s", code, out)
	}
	if n := count(t, url, "SELECT count(*) FROM orders WHERE status = 'cancelled' AND id <= 5"); n != 5 {
		t.Fatalf("after merge: %d rows", n)
	}
	// Other tests' branches live on the same server: look for this one.
	var left bool
	if err := pgtest.Connect(t, url).QueryRow(context.Background(), "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", branchDB).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left {
		t.Fatalf("branch database %s left after the merge", branchDB)
	}
}
