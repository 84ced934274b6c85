package migrate

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/airlock-dev/airlock/sqlguard"
)

// TestFindingsPage keeps docs/findings.md, the one page documenting every
// finding code, in step with the two catalogs it is generated from. Run
// with -update to rewrite it.
func TestFindingsPage(t *testing.T) {
	type entry struct{ code, title, level, fix, source string }
	byCode := map[string]entry{}
	for code, f := range sqlguard.FindingCatalog {
		byCode[code] = entry{code, f.Title, f.Level, f.Fix, "parse tree"}
	}
	for code, f := range RuntimeFindings {
		if e, ok := byCode[code]; ok {
			e.source = "parse tree; raised by the dry run on a large table"
			byCode[code] = e
			continue
		}
		level := f.Level
		if level == "" {
			level = "warning"
		}
		byCode[code] = entry{code, f.Title, level, f.Fix, "dry run"}
	}
	codes := make([]string, 0, len(byCode))
	for c := range byCode {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	var sb strings.Builder
	sb.WriteString("# Migration findings\n\n")
	sb.WriteString("Every warning in a `migrate_dry_run` / `apply_migration_with_ticket` report has a stable code, a level\n")
	sb.WriteString("(info, warning, danger; the dry run may raise a level when it observed a large table) and a one-line fix.\n")
	sb.WriteString("Codes follow Atlas's scheme where one exists (DS destructive, MF data-dependent, BC backward-incompatible,\n")
	sb.WriteString("PG PostgreSQL blocking). This page is generated from the code (`go test ./migrate -run TestFindingsPage -update`).\n\n")
	sb.WriteString("| code | finding | level | found by | fix |\n|---|---|---|---|---|\n")
	for _, c := range codes {
		e := byCode[c]
		fmt.Fprintf(&sb, "| %s | %s | %s | %s | %s |\n", e.code, e.title, e.level, e.source, e.fix)
	}
	sb.WriteString("\nRisk: high for drop_table, truncate, drop_column or any danger finding; moderate for other DDL, UPDATE and DELETE\n")
	sb.WriteString("or any warning; low otherwise; raised one level when the run observed an ACCESS EXCLUSIVE lock or a rewrite on a\n")
	sb.WriteString("large table, or more rows affected than `write.rows_affected_warn`.\n")
	path := filepath.Join("..", "docs", "findings.md")
	if *update {
		if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if string(got) != sb.String() {
		t.Fatalf("docs/findings.md is out of date: run go test ./migrate -run TestFindingsPage -update")
	}
}
