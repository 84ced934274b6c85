package codes

import (
	"fmt"
	"go/ast"
	"go/token"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// TestFindingsPage keeps docs/findings.md, the one page documenting every
// finding code, in step with Findings. Run with -update to rewrite it.
func TestFindingsPage(t *testing.T) { checkPage(t, "findings.md", "TestFindingsPage", findingsPage()) }

// findingsPage lists each code once: a code both reports is documented
// as the parse tree reports it.
func findingsPage() string {
	type entry struct {
		Finding
		source string
	}
	byCode := map[string]entry{}
	for _, f := range Findings {
		if f.FoundBy == ParseTree {
			byCode[f.Code] = entry{f, "parse tree"}
		}
	}
	for _, f := range Findings {
		if f.FoundBy != DryRun {
			continue
		}
		if e, ok := byCode[f.Code]; ok {
			e.source = "parse tree; raised by the dry run on a large table"
			byCode[f.Code] = e
			continue
		}
		byCode[f.Code] = entry{f, "dry run"}
	}
	names := make([]string, 0, len(byCode))
	for c := range byCode {
		names = append(names, c)
	}
	sort.Strings(names)
	var sb strings.Builder
	sb.WriteString("# Migration findings\n\n")
	sb.WriteString("Every warning in a `migrate_dry_run` / `apply_migration_with_ticket` report has a stable code, a level\n")
	sb.WriteString("(info, warning, danger; the dry run may raise a level when it observed a large table) and a one-line fix.\n")
	sb.WriteString("Codes follow Atlas's scheme where one exists (DS destructive, MF data-dependent, BC backward-incompatible,\n")
	sb.WriteString("PG PostgreSQL blocking). This page is generated from the code (`go test ./codes -run TestFindingsPage -update`).\n\n")
	sb.WriteString("| code | finding | level | found by | fix |\n|---|---|---|---|---|\n")
	for _, c := range names {
		e := byCode[c]
		fmt.Fprintf(&sb, "| %s | %s | %s | %s | %s |\n", e.Code, e.Title, e.Level, e.source, e.Fix)
	}
	sb.WriteString("\nRisk: high for drop_table, truncate, drop_column or any danger finding; moderate for other DDL, UPDATE and DELETE\n")
	sb.WriteString("or any warning; low otherwise; raised one level when the run observed an ACCESS EXCLUSIVE lock or a rewrite on a\n")
	sb.WriteString("large table, or more rows affected than `write.rows_affected_warn`.\n")
	return sb.String()
}

// packageFoundBy says which package reports the findings of each FoundBy.
var packageFoundBy = map[string]FoundBy{"sqlguard": ParseTree, "migrate": DryRun}

// TestFindingsMatchSource parses every non-test Go file of the repository
// and collects the finding codes it reports: c.finding("CODE", ...) in
// sqlguard, finding("CODE", level, ...) and raise(fs, stmt, "CODE", ...) in
// migrate. Every code found must be in Findings for its package, every
// entry must still be found, and every entry must be complete.
func TestFindingsMatchSource(t *testing.T) {
	found := map[string]bool{} // code + "\x00" + found by
	n := 0
	walkGo(t, "..", func(fset *token.FileSet, f *ast.File) {
		uses, problems := findingCodesIn(fset, f)
		for _, p := range problems {
			t.Error(p)
		}
		for _, u := range uses {
			n++
			by, ok := packageFoundBy[u.pkg]
			if !ok {
				t.Errorf("%s: finding %s in package %s, which packageFoundBy does not list", u.pos, u.code, u.pkg)
				continue
			}
			if !slices.ContainsFunc(Findings, func(x Finding) bool { return x.Code == u.code && x.FoundBy == by }) {
				t.Errorf("%s: finding %s is not in the registry (codes/findings.go) for %s", u.pos, u.code, by)
			}
			found[u.code+"\x00"+string(by)] = true
		}
	})
	if n == 0 {
		t.Fatal("no finding found in the source: the patterns no longer match")
	}
	seen := map[string]bool{}
	for _, f := range Findings {
		key := f.Code + "\x00" + string(f.FoundBy)
		if seen[key] {
			t.Errorf("registry: %s (%s) is registered twice", f.Code, f.FoundBy)
		}
		seen[key] = true
		if f.Title == "" || f.Fix == "" || !slices.Contains(Levels, f.Level) || strings.ContainsAny(f.Title+f.Fix, "|\n") {
			t.Errorf("registry: %s (%s) needs a title, a level and a one-line fix without |: %+v", f.Code, f.FoundBy, f)
		}
		if !found[key] {
			t.Errorf("registry: %s (%s) is no longer reported anywhere in the source", f.Code, f.FoundBy)
		}
	}
}

// findingCodesIn returns the finding codes one file reports, and the code
// arguments that are neither string literals nor a passed-on code.
func findingCodesIn(fset *token.FileSet, f *ast.File) ([]use, []string) {
	pkg := f.Name.Name
	var uses []use
	var problems []string
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		var arg ast.Expr
		switch name := calleeName(call.Fun); {
		case name == "finding" && pkg == "sqlguard" && len(call.Args) >= 2:
			arg = call.Args[0]
		case name == "finding" && pkg == "migrate" && len(call.Args) == 4:
			arg = call.Args[0]
		case name == "raise" && pkg == "migrate" && len(call.Args) == 4:
			arg = call.Args[2]
		default:
			return true
		}
		pos := fset.Position(arg.Pos()).String()
		if lit, ok := arg.(*ast.BasicLit); ok && lit.Kind == token.STRING {
			code, _ := strconv.Unquote(lit.Value)
			uses = append(uses, use{code, pkg, pos})
		} else if !passedOn(arg) {
			problems = append(problems, fmt.Sprintf("%s: a finding code that is not a string literal: the registry test cannot see it", pos))
		}
		return true
	})
	return uses, problems
}
