package roles

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	dbcatalog "github.com/airlock-dev/airlock/catalog"
	"github.com/airlock-dev/airlock/scopes"
)

// Problem is something in the database that keeps a scope from working as
// written: a table it names that does not exist, or one whose row-level
// security would show the scope's roles nothing. `airlock scope plan`,
// `scope apply` and `airlock doctor` report the same problems in the same
// words.
type Problem struct {
	// Path locates the scope entry in JSONPath notation, as `airlock check`
	// does: $.read.tables["public.orders"], $.write.tables[0].
	Path    string
	Message string
	Fix     string
}

func (p Problem) String() string { return p.Path + ": " + p.Message }

// ProblemsError is Plan's and Apply's error when the database has
// Problems: nothing is planned until they are fixed.
type ProblemsError struct {
	Problems []Problem
}

func (e *ProblemsError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return "the scope does not fit the database:\n" + strings.Join(lines, "\n")
}

// AccessPolicies returns the names of the permissive policies Apply adds
// for the scope's roles on a table whose row-level security (someone
// else's) gives them no rows at all, when the scope's row_filter says
// which rows they may see.
func AccessPolicies(scope *scopes.Scope) (read, write string) {
	base := "airlock_" + strings.ReplaceAll(scope.Name, "-", "_")
	return base + "_access", base + "_write_access"
}

// tableAccess is what the catalog says about one scope table.
type tableAccess struct {
	kind       string // pg_class.relkind
	rls, force bool
	// readCmds and writeCmds are the pg_policy.polcmd values of the
	// permissive policies (airlock's access policies left out) that apply
	// to the read and the write role: to PUBLIC, or to the role itself.
	readCmds, writeCmds []string
}

const accessSQL = `
SELECT n.nspname || '.' || c.relname, c.relkind::text, c.relrowsecurity, c.relforcerowsecurity,
	ARRAY(SELECT DISTINCT p.polcmd::text FROM pg_catalog.pg_policy p
		WHERE p.polrelid = c.oid AND p.polpermissive AND p.polname <> ALL($4)
		AND (0 = ANY(p.polroles) OR (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = $2) = ANY(p.polroles))),
	ARRAY(SELECT DISTINCT p.polcmd::text FROM pg_catalog.pg_policy p
		WHERE p.polrelid = c.oid AND p.polpermissive AND p.polname <> ALL($4)
		AND (0 = ANY(p.polroles) OR (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = $3) = ANY(p.polroles)))
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND (n.nspname || '.' || c.relname) = ANY($1)`

func loadAccess(ctx context.Context, q querier, scope *scopes.Scope) (map[string]tableAccess, error) {
	readAccess, writeAccess := AccessPolicies(scope)
	rows, err := q.Query(ctx, accessSQL, allTables(scope), scope.ReadRole(), scope.WriteRole(), []string{readAccess, writeAccess})
	if err != nil {
		return nil, fmt.Errorf("plan roles: load row-level security: %w", err)
	}
	defer rows.Close()
	out := map[string]tableAccess{}
	for rows.Next() {
		var name string
		var a tableAccess
		if err := rows.Scan(&name, &a.kind, &a.rls, &a.force, &a.readCmds, &a.writeCmds); err != nil {
			return nil, fmt.Errorf("plan roles: load row-level security: %w", err)
		}
		out[name] = a
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("plan roles: load row-level security: %w", err)
	}
	return out, nil
}

// allTables lists every table the scope reads or writes, sorted, once.
func allTables(scope *scopes.Scope) []string {
	var names []string
	for name := range scope.Read.Tables {
		names = append(names, name)
	}
	if scope.Write != nil {
		names = append(names, scope.Write.Tables...)
	}
	sort.Strings(names)
	return slices.Compact(names)
}

// covers reports whether permissive policies with these commands let a
// role run cmd ('r' SELECT, 'a' INSERT, 'w' UPDATE, 'd' DELETE).
// UPDATE and DELETE also read the rows they change, so SELECT policies
// must let them see those rows too.
func covers(cmds []string, cmd string) bool {
	has := func(c string) bool { return slices.Contains(cmds, c) || slices.Contains(cmds, "*") }
	switch cmd {
	case "w", "d":
		return has(cmd) && has("r")
	}
	return has(cmd)
}

// writeCommands are the policy commands the scope's write kinds need.
func writeCommands(w *scopes.Write) []string {
	var out []string
	for _, kc := range []struct{ kind, cmd string }{{"insert", "a"}, {"update", "w"}, {"delete", "d"}} {
		if w.Allows(kc.kind) {
			out = append(out, kc.cmd)
		}
	}
	return out
}

var commandNames = map[string]string{"r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE"}

// Problems compares the scope with the database and returns what keeps it
// from working as written. It changes nothing.
func Problems(ctx context.Context, q querier, scope *scopes.Scope) ([]Problem, error) {
	access, err := loadAccess(ctx, q, scope)
	if err != nil {
		return nil, err
	}
	ps, err := missingTables(ctx, q, scope, access)
	if err != nil {
		return nil, err
	}
	return append(ps, rowSecurityProblems(scope, access)...), nil
}

// rowSecurityProblems finds the tables whose row-level security (someone
// else's policies) would give the scope's roles no rows and that the
// scope says nothing about: without a row_filter airlock cannot know which
// rows the scope means, and it does not widen anyone's access on a guess.
func rowSecurityProblems(scope *scopes.Scope, access map[string]tableAccess) []Problem {
	var out []Problem
	for _, table := range allTables(scope) {
		a, ok := access[table]
		if !ok || !a.rls {
			continue
		}
		rule, reads := scope.TableRule(table)
		filtered := reads && rule.RowFilter != ""
		if reads && !filtered && !covers(a.readCmds, "r") {
			out = append(out, Problem{
				Path: `$.read.tables[` + strconv.Quote(table) + `]`,
				Message: fmt.Sprintf("%s has row-level security, and none of its policies lets %s see a row: every query of it would return nothing",
					table, scope.ReadRole()),
				Fix: `add "row_filter": "true" to it (every row) or a filter such as "tenant_id = 42", then run airlock scope apply again: it adds a policy that lets the scope's roles through, limited by the filter`,
			})
		}
		w := scope.Write
		if w == nil || !w.WritesTable(table) || w.OwnTables || filtered {
			continue
		}
		var denied []string
		for _, cmd := range writeCommands(w) {
			if !covers(a.writeCmds, cmd) {
				denied = append(denied, commandNames[cmd])
			}
		}
		if len(denied) > 0 {
			i := slices.Index(w.Tables, table)
			out = append(out, Problem{
				Path: fmt.Sprintf("$.write.tables[%d]", i),
				Message: fmt.Sprintf("%s has row-level security, and none of its policies lets %s %s its rows: those migrations would fail or change nothing",
					table, scope.WriteRole(), strings.Join(denied, ", ")),
				Fix: fmt.Sprintf(`give %s a row_filter under read.tables (or "true" for every row), then run airlock scope apply again`, table),
			})
		}
	}
	return out
}

// accessPolicies returns the permissive policies the scope's roles need on
// the tables with a row filter whose row-level security (someone else's)
// gives them nothing: the restrictive filter policy alone would then show
// no rows at all, whatever the filter says.
func accessPolicies(scope *scopes.Scope, filters []filter, access map[string]tableAccess) []policy {
	readName, writeName := AccessPolicies(scope)
	truth, _ := pg_query.Parse("SELECT 1 WHERE true")
	qual := truth.Stmts[0].Stmt.GetSelectStmt().WhereClause
	var out []policy
	for _, f := range filters {
		a := access[f.table()]
		if !a.rls {
			continue // Apply enables it with the passthrough policy
		}
		if !covers(a.readCmds, "r") {
			out = append(out, policy{Schema: f.Schema, Table: f.Table, Name: readName, Cmd: "r", Permissive: true,
				Roles: readers(scope), Source: "true", Qual: qual})
		}
		if w := scope.Write; w != nil && w.WritesTable(f.table()) && !w.OwnTables {
			need := false
			for _, cmd := range writeCommands(w) {
				need = need || !covers(a.writeCmds, cmd)
			}
			if need {
				out = append(out, policy{Schema: f.Schema, Table: f.Table, Name: writeName, Cmd: "*", Permissive: true,
					Roles: []string{scope.WriteRole()}, Source: "true", Qual: qual})
			}
		}
	}
	return out
}

// missingTables reports scope tables the database does not have, with the
// closest name it does have. A write table a migration may create
// (create_table allowed) is not missing.
func missingTables(ctx context.Context, q querier, scope *scopes.Scope, access map[string]tableAccess) ([]Problem, error) {
	var missing []string
	creatable := func(t string) bool {
		return scope.Write != nil && scope.Write.WritesTable(t) && scope.Write.Allows("create_table")
	}
	for _, t := range allTables(scope) {
		if _, ok := access[t]; !ok && !creatable(t) {
			missing = append(missing, t)
		}
	}
	if len(missing) == 0 {
		return nil, nil
	}
	existing, err := dbcatalog.Relations(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("plan roles: %w", err)
	}
	var db string
	if err := queryOne(ctx, q, "SELECT current_database() WHERE $1::int = 1", 1, &db); err != nil {
		return nil, err
	}
	var out []Problem
	if len(missing) == len(allTables(scope)) {
		out = append(out, Problem{
			Path: "$.read.tables",
			Message: fmt.Sprintf("none of the scope's tables exist in database %q: is %s pointing at the right database?",
				db, scope.URLEnv()),
			Fix: "point " + scope.URLEnv() + " at the database that holds the scope's tables",
		})
	}
	for _, t := range missing {
		p := Problem{Path: tablePath(scope, t), Message: fmt.Sprintf("no table or view %s in database %q", t, db)}
		if near := closest(t, existing); near != "" {
			p.Message += fmt.Sprintf("; did you mean %s?", near)
			p.Fix = fmt.Sprintf("write %s in the scope file (or create the table)", near)
		} else {
			p.Fix = "create the table, or remove it from the scope file"
		}
		out = append(out, p)
	}
	return out, nil
}

// tablePath is where table appears in the scope file.
func tablePath(scope *scopes.Scope, table string) string {
	if _, ok := scope.Read.Tables[table]; ok {
		return `$.read.tables[` + strconv.Quote(table) + `]`
	}
	return fmt.Sprintf("$.write.tables[%d]", slices.Index(scope.Write.Tables, table))
}

// closest returns the name among names nearest to want: the same table in
// another schema, or one a few edits away; "" when nothing is close.
func closest(want string, names []string) string {
	_, wantRel := splitQualified(want)
	best, bestDist := "", 0
	for _, n := range names {
		_, rel := splitQualified(n)
		d := editDistance(want, n)
		if rel == wantRel {
			d = min(d, 1)
		}
		if best == "" || d < bestDist {
			best, bestDist = n, d
		}
	}
	if best == "" || bestDist > max(2, len(wantRel)/3) {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes
// (names are lower-case ASCII identifiers).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
