package layers

import (
	"bufio"
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// layer ranks each package of the module, lowest first
// (docs/architecture.md, Packages and layers). A package may import
// packages of its own layer or below, and internal/* from anywhere. A new
// package must be given a layer here.
var layer = map[string]int{
	// Foundations, and the standalone packages that need nothing more.
	"codes":  0,
	"scopes": 0,
	"audit":  0,
	"notify": 0,
	"bridge": 0,
	// The guard.
	"sqlguard": 1,
	// Catalog lookups.
	"catalog": 2,
	// Running a checked migration.
	"migrate": 3,
	// Held changes and their decisions.
	"review": 4,
	// A scope compiled to the database, and checked against it.
	"roles":  5,
	"doctor": 5,
	// The MCP tools, and the review page beside them.
	"tools":     6,
	"reviewweb": 6,
	// The MCP server and its transports.
	"server": 7,
	// Programs.
	"cmd/airlock": 8,
	"bench/load":  8,
}

// exceptions are known imports against the order, each to be removed.
// There are none: a new one needs a reason here.
var exceptions = map[[2]string]bool{}

func TestLayers(t *testing.T) {
	root, module := moduleRoot(t)
	imports := packageImports(t, root, module)
	if len(imports) == 0 {
		t.Fatal("found no packages")
	}
	seen := map[string]bool{}
	for _, pkg := range slices.Sorted(maps.Keys(imports)) {
		seen[pkg] = true
		internal := isInternal(pkg)
		rank, ok := layer[pkg]
		if !ok && !internal {
			t.Errorf("package %s has no layer: add it to layer (and to docs/architecture.md, Packages and layers)", pkg)
			continue
		}
		for _, dep := range imports[pkg] {
			switch {
			case isInternal(dep):
				// Helpers serve every layer.
			case internal:
				t.Errorf("%s imports %s: an internal helper imports nothing outside internal/", pkg, dep)
			case exceptions[[2]string{pkg, dep}]:
			default:
				depRank, ok := layer[dep]
				if ok && depRank > rank {
					t.Errorf("%s (layer %d) imports %s (layer %d): a package may import only its own layer or below", pkg, rank, dep, depRank)
				}
			}
		}
	}
	for pkg := range layer {
		if !seen[pkg] {
			t.Errorf("layer lists %s, which is not a package of the module any more", pkg)
		}
	}
	for e := range exceptions {
		if !slices.Contains(imports[e[0]], e[1]) {
			t.Errorf("exception %s -> %s is no longer needed: remove it", e[0], e[1])
		}
	}
}

func isInternal(pkg string) bool { return pkg == "internal" || strings.HasPrefix(pkg, "internal/") }

// moduleRoot finds go.mod above the test's directory and returns its
// directory and module path.
func moduleRoot(t *testing.T) (string, string) {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		f, err := os.Open(filepath.Join(dir, "go.mod"))
		if err == nil {
			defer f.Close()
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
					return dir, strings.Trim(strings.TrimSpace(rest), `"`)
				}
			}
			t.Fatalf("%s/go.mod names no module", dir)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// packageImports maps each package of the module with non-test Go files
// (as a path relative to the module) to the module's packages those files
// import. Build constraints are ignored: an import under any of them
// counts.
func packageImports(t *testing.T, root, module string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			if path != root {
				if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
					return filepath.SkipDir // another module
				}
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		pkg := filepath.ToSlash(rel)
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		if _, ok := out[pkg]; !ok {
			out[pkg] = nil
		}
		for _, spec := range f.Imports {
			p, err := strconv.Unquote(spec.Path.Value)
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			if dep, ok := strings.CutPrefix(p, module+"/"); ok && !slices.Contains(out[pkg], dep) {
				out[pkg] = append(out[pkg], dep)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
