package codes

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/refusals.md and docs/findings.md")

// packageWheres says which places each package's codes arise in: a code
// found in a package must be registered for one of its places.
var packageWheres = map[string][]Where{
	"sqlguard":  {ReadGuard, MigrationGuard, RowFilter},
	"roles":     {RowFilter},
	"tools":     {ToolArguments, CatalogChecks, Apply, Results},
	"reviewweb": {ReviewAPI},
}

// use is one code string literal found in the source.
type use struct {
	code, pkg, pos string
}

// TestRegistryMatchesSource parses every non-test Go file of the
// repository and collects the codes it answers with: refuse("code", ...)
// (sqlguard's refuse and migStmt.refuse), Refusal{Code: "code"} and
// ErrorPayload{Code: "code"} literals, payload.Code = "code" assignments,
// apiError(w, status, "code", msg), the guard's fail(status, "code", msg)
// and classify's return values (reviewweb). Every code found must be in
// Registry for one of its package's places, and every Registry entry must
// still be found.
func TestRegistryMatchesSource(t *testing.T) {
	uses, problems := collectCodes(t, "..")
	for _, p := range problems {
		t.Error(p)
	}
	if len(uses) == 0 {
		t.Fatal("no code found in the source: the patterns no longer match")
	}
	found := map[string]bool{} // name + "\x00" + where
	for _, u := range uses {
		wheres, ok := packageWheres[u.pkg]
		if !ok {
			t.Errorf("%s: code %q in package %s, which packageWheres does not list", u.pos, u.code, u.pkg)
			continue
		}
		registered := false
		for _, c := range Registry {
			if c.Name == u.code && slices.Contains(wheres, c.Where) {
				registered = true
				found[c.Name+"\x00"+string(c.Where)] = true
			}
		}
		if !registered {
			t.Errorf("%s: code %q is not in the registry (codes/codes.go) for any of %v", u.pos, u.code, wheres)
		}
	}
	seen := map[string]bool{}
	for _, c := range Registry {
		key := c.Name + "\x00" + string(c.Where)
		if seen[key] {
			t.Errorf("registry: %s (%s) is registered twice", c.Name, c.Where)
		}
		seen[key] = true
		if !slices.ContainsFunc(Places, func(p Place) bool { return p.Where == c.Where }) {
			t.Errorf("registry: %s has a place %q that Places does not list", c.Name, c.Where)
		}
		if c.Meaning == "" || strings.ContainsAny(c.Meaning, "|\n") {
			t.Errorf("registry: %s (%s) needs a one-line meaning without |", c.Name, c.Where)
		}
		if !found[key] {
			t.Errorf("registry: %s (%s) is no longer used anywhere in the source", c.Name, c.Where)
		}
	}
}

// collectCodes walks the Go files under root, test files, testdata and
// hidden directories aside.
func collectCodes(t *testing.T, root string) ([]use, []string) {
	t.Helper()
	var uses []use
	var problems []string
	walkGo(t, root, func(fset *token.FileSet, f *ast.File) {
		u, p := codesIn(fset, f)
		uses, problems = append(uses, u...), append(problems, p...)
	})
	return uses, problems
}

// walkGo parses every non-test Go file under root, testdata, node_modules,
// vendor and hidden directories aside, and hands each to visit.
func walkGo(t *testing.T, root string, visit func(*token.FileSet, *ast.File)) {
	t.Helper()
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		visit(fset, f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// codesIn returns the codes one file answers with, and the code
// arguments of the patterns that are neither string literals nor passed
// on from a code parameter or field (which would hide a code from this
// test).
func codesIn(fset *token.FileSet, f *ast.File) ([]use, []string) {
	pkg := f.Name.Name
	var uses []use
	var problems []string
	record := func(e ast.Expr, what string) {
		pos := fset.Position(e.Pos()).String()
		if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
			code, err := strconv.Unquote(lit.Value)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", pos, err))
				return
			}
			uses = append(uses, use{code, pkg, pos})
			return
		}
		if passedOn(e) {
			return
		}
		problems = append(problems, fmt.Sprintf("%s: the code of %s is not a string literal: the registry test cannot see it", pos, what))
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CallExpr:
			switch name := calleeName(n.Fun); {
			case name == "refuse" && pkg == "sqlguard" && len(n.Args) >= 3:
				record(n.Args[0], "refuse")
			case name == "apiError" && len(n.Args) == 4:
				record(n.Args[2], "apiError")
			case name == "fail" && pkg == "reviewweb" && len(n.Args) == 3:
				record(n.Args[1], "fail")
			}
		case *ast.CompositeLit:
			if name := calleeName(n.Type); name == "Refusal" || name == "ErrorPayload" {
				for _, el := range n.Elts {
					if kv, ok := el.(*ast.KeyValueExpr); ok && isIdent(kv.Key, "Code") {
						record(kv.Value, name+"{Code: ...}")
					}
				}
			}
		case *ast.AssignStmt:
			if len(n.Lhs) != len(n.Rhs) {
				break
			}
			for i, l := range n.Lhs {
				if sel, ok := l.(*ast.SelectorExpr); ok && sel.Sel.Name == "Code" {
					if _, lit := n.Rhs[i].(*ast.BasicLit); lit {
						record(n.Rhs[i], "an assignment to .Code")
					}
				}
			}
		case *ast.FuncDecl:
			if n.Name.Name == "classify" && pkg == "reviewweb" && n.Body != nil {
				ast.Inspect(n.Body, func(m ast.Node) bool {
					if r, ok := m.(*ast.ReturnStmt); ok && len(r.Results) == 2 {
						record(r.Results[1], "classify")
					}
					return true
				})
			}
		}
		return true
	})
	return uses, problems
}

// calleeName is the name of a called function or a literal's type: f,
// x.f, pkg.T.
func calleeName(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return e.Sel.Name
	}
	return ""
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

// passedOn reports whether a code argument only passes on a code decided
// elsewhere: a parameter named code, or another value's Code field.
func passedOn(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name == "code"
	case *ast.SelectorExpr:
		return e.Sel.Name == "Code"
	}
	return false
}

// TestRefusalsPage keeps docs/refusals.md, the one page documenting every
// refusal and failure code, in step with Registry. Run with -update to
// rewrite it.
func TestRefusalsPage(t *testing.T) { checkPage(t, "refusals.md", "TestRefusalsPage", refusalsPage()) }

// checkPage compares docs/name with want, after writing it with -update.
func checkPage(t *testing.T, name, test, want string) {
	t.Helper()
	path := filepath.Join("..", "docs", name)
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if string(got) != want {
		t.Fatalf("docs/%s is out of date: run go test ./codes -run %s -update", name, test)
	}
}

func refusalsPage() string {
	order := map[Where]int{}
	for i, p := range Places {
		order[p.Where] = i
	}
	entries := slices.Clone(Registry)
	sort.SliceStable(entries, func(i, j int) bool {
		if entries[i].Name != entries[j].Name {
			return entries[i].Name < entries[j].Name
		}
		return order[entries[i].Where] < order[entries[j].Where]
	})
	var sb strings.Builder
	sb.WriteString("# Refusal and failure codes\n\n")
	sb.WriteString("Every refused or failed tool call carries a stable code in `_meta[\"airlock/error\"].code` and in its text\n")
	sb.WriteString("(`Refused (CODE): reason. Allowed instead: hint.`, `Failed (CODE): ...`); every error of the review page's JSON API\n")
	sb.WriteString("carries one in `error.code`. A code may arise in several places, with a meaning of its own in each. The warnings\n")
	sb.WriteString("of a dry-run report have codes of their own, listed in [findings.md](findings.md). This page is generated from\n")
	sb.WriteString("the registry in `codes/codes.go` (`go test ./codes -run TestRefusalsPage -update`), and the test checks that the\n")
	sb.WriteString("registry names exactly the codes the source answers with.\n\n")
	sb.WriteString("| where | what it covers |\n|---|---|\n")
	for _, p := range Places {
		fmt.Fprintf(&sb, "| %s | %s |\n", p.Where, p.Text)
	}
	sb.WriteString("\n| code | where | meaning |\n|---|---|---|\n")
	for _, c := range entries {
		fmt.Fprintf(&sb, "| `%s` | %s | %s |\n", c.Name, c.Where, c.Meaning)
	}
	return sb.String()
}

// TestCodesIn checks that every pattern is recognised, and that a code
// the test cannot see is reported.
func TestCodesIn(t *testing.T) {
	src := map[string]string{
		"sqlguard": `package sqlguard
func f(c *migStmt, code string) {
	refuse("a", "hint", "format")
	c.refuse("b", "hint", "format %s", x)
	_ = &Refusal{Code: "c", Reason: "r"}
	refuse(code, "hint", "passed on")
	refuse(other, "hint", "hidden")
}`,
		"tools": `package tools
func f(r *sqlguard.Refusal) {
	_ = sqlguard.Refusal{Code: "d"}
	p := ErrorPayload{Code: r.Code}
	p.Code = "e"
	p.Code, p.Reason = "f", "reason"
}`,
		"reviewweb": `package reviewweb
func classify(err error) (int, string) {
	if err != nil {
		return 409, "g"
	}
	return 500, "h"
}
func g(w http.ResponseWriter, fail func(int, string, string)) {
	apiError(w, 404, "i", "msg")
	fail(401, "j", "msg")
}`,
	}
	var got []string
	var problems []string
	for _, s := range src {
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, "x.go", s, 0)
		if err != nil {
			t.Fatal(err)
		}
		u, p := codesIn(fset, f)
		for _, x := range u {
			got = append(got, x.code)
		}
		problems = append(problems, p...)
	}
	sort.Strings(got)
	if want := "a b c d e f g h i j"; strings.Join(got, " ") != want {
		t.Errorf("codes found: %v, want %s", got, want)
	}
	if len(problems) != 1 || !strings.Contains(problems[0], "not a string literal") {
		t.Errorf("problems: %q, want one about the hidden code", problems)
	}
}
