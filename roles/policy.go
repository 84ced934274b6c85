package roles

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/airlock-dev/airlock/scopes"
)

// PassthroughPolicy is the permissive policy Apply adds when it enables
// row-level security on a table, so that roles other than the scope's keep
// seeing every row.
const PassthroughPolicy = "airlock_passthrough"

// FilterPolicies returns the names of the restrictive policies that carry
// the scope's row filters: one for the read role, one for the write role.
func FilterPolicies(scope *scopes.Scope) (read, write string) {
	base := "airlock_" + strings.ReplaceAll(scope.Name, "-", "_")
	return base + "_filter", base + "_write_filter"
}

// readers are the roles a table's read policies apply to, sorted as
// pg_policy lists them: the read role, and the mask role, which reads the
// table for its masked view.
func readers(scope *scopes.Scope) []string {
	out := []string{scope.ReadRole(), scope.MaskRole()}
	slices.Sort(out)
	return out
}

// policy is one airlock filter policy, wanted or present.
type policy struct {
	Schema, Table, Name string
	Cmd                 string // "r" (SELECT) or "*" (ALL), as pg_policy.polcmd
	Permissive          bool
	Roles               []string
	Source              string // the policy's comment: the filter's source text
	Qual                *pg_query.Node
}

func (p policy) table() string { return p.Schema + "." + p.Table }

func (p policy) same(q policy) bool {
	return p.Cmd == q.Cmd && p.Permissive == q.Permissive && slices.Equal(p.Roles, q.Roles) && p.Source == q.Source
}

const policiesSQL = `
SELECT n.nspname, c.relname, p.polname, p.polcmd::text, p.polpermissive,
       ARRAY(SELECT r.rolname::text FROM pg_catalog.pg_roles r WHERE r.oid = ANY(p.polroles) ORDER BY 1),
       coalesce(pg_catalog.obj_description(p.oid, 'pg_policy'), '')
FROM pg_catalog.pg_policy p
JOIN pg_catalog.pg_class c ON c.oid = p.polrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE p.polname = ANY($1)`

const rlsSQL = `
SELECT n.nspname || '.' || c.relname, c.relrowsecurity,
       ARRAY(SELECT p.polname::text FROM pg_catalog.pg_policy p WHERE p.polrelid = c.oid ORDER BY 1)
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE (n.nspname || '.' || c.relname) = ANY($1)`

type rlsState struct {
	enabled  bool
	policies []string
}

// planPolicies returns the statements that give the scope's roles exactly
// the scope's row filters, table by table.
func planPolicies(ctx context.Context, q querier, scope *scopes.Scope, filters []filter, access []policy) ([]string, error) {
	readName, writeName := FilterPolicies(scope)
	readAccess, writeAccess := AccessPolicies(scope)
	want := map[string][]policy{}
	for _, p := range access {
		want[p.table()] = append(want[p.table()], p)
	}
	for _, f := range filters {
		p := policy{Schema: f.Schema, Table: f.Table, Name: readName, Cmd: "r", Roles: readers(scope), Source: f.Source, Qual: f.Qual}
		want[p.table()] = append(want[p.table()], p)
		if scope.Write != nil {
			p.Name, p.Cmd, p.Roles = writeName, "*", []string{scope.WriteRole()}
			want[p.table()] = append(want[p.table()], p)
		}
	}
	have, err := loadPolicies(ctx, q, []string{readName, writeName, readAccess, writeAccess})
	if err != nil {
		return nil, err
	}
	var tables []string
	for t := range want {
		tables = append(tables, t)
	}
	for t := range have {
		if want[t] == nil {
			tables = append(tables, t)
		}
	}
	if len(tables) == 0 {
		return nil, nil
	}
	sort.Strings(tables)
	rls, err := loadRLS(ctx, q, tables)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, t := range tables {
		stmts, err := planTablePolicies(want[t], have[t], rls[t])
		if err != nil {
			return nil, err
		}
		out = append(out, stmts...)
	}
	return out, nil
}

func planTablePolicies(want, have []policy, state rlsState) ([]string, error) {
	var drops, creates []policy
	for _, h := range have {
		if i := slices.IndexFunc(want, func(w policy) bool { return w.Name == h.Name }); i < 0 || !want[i].same(h) {
			drops = append(drops, h)
		}
	}
	for _, w := range want {
		if i := slices.IndexFunc(have, func(h policy) bool { return h.Name == w.Name }); i < 0 || !have[i].same(w) {
			creates = append(creates, w)
		}
	}
	var out []string
	remaining := slices.Clone(state.policies)
	for _, p := range drops {
		out = append(out, fmt.Sprintf("DROP POLICY %s ON %s", ident(p.Name), qualified(p.Schema, p.Table)))
		remaining = slices.DeleteFunc(remaining, func(n string) bool { return n == p.Name })
	}
	var table string
	switch {
	case len(want) > 0:
		table = qualified(want[0].Schema, want[0].Table)
	case len(have) > 0:
		table = qualified(have[0].Schema, have[0].Table)
	}
	if len(want) > 0 && !state.enabled {
		out = append(out, fmt.Sprintf("ALTER TABLE %s ENABLE ROW LEVEL SECURITY", table))
		if !slices.Contains(state.policies, PassthroughPolicy) {
			out = append(out, fmt.Sprintf("CREATE POLICY %s ON %s AS PERMISSIVE FOR ALL TO PUBLIC USING (true) WITH CHECK (true)", ident(PassthroughPolicy), table))
			remaining = append(remaining, PassthroughPolicy)
		}
	}
	for _, p := range creates {
		stmts, err := createPolicy(p)
		if err != nil {
			return nil, err
		}
		out = append(out, stmts...)
		remaining = append(remaining, p.Name)
	}
	// Undo only what airlock did: the passthrough policy proves that
	// airlock enabled row-level security here.
	if len(want) == 0 && state.enabled && slices.Equal(remaining, []string{PassthroughPolicy}) {
		out = append(out,
			fmt.Sprintf("DROP POLICY %s ON %s", ident(PassthroughPolicy), table),
			fmt.Sprintf("ALTER TABLE %s DISABLE ROW LEVEL SECURITY", table))
	}
	return out, nil
}

// createPolicy renders CREATE POLICY and its COMMENT by deparsing trees:
// the filter goes in as the parse tree that was validated, never as text.
func createPolicy(p policy) ([]string, error) {
	cmd := "SELECT"
	if p.Cmd == "*" {
		cmd = "ALL"
	}
	as := "RESTRICTIVE"
	if p.Permissive {
		as = "PERMISSIVE"
	}
	to := make([]string, len(p.Roles))
	for i, r := range p.Roles {
		to[i] = ident(r)
	}
	tmpl := fmt.Sprintf("CREATE POLICY %s ON %s AS %s FOR %s TO %s USING (true)",
		ident(p.Name), qualified(p.Schema, p.Table), as, cmd, strings.Join(to, ", "))
	tree, err := pg_query.Parse(tmpl)
	if err != nil {
		return nil, fmt.Errorf("plan roles: policy %s: %w", p.Name, err)
	}
	tree.Stmts[0].Stmt.GetCreatePolicyStmt().Qual = p.Qual
	create, err := pg_query.Deparse(tree)
	if err != nil {
		return nil, fmt.Errorf("plan roles: policy %s: %w", p.Name, err)
	}
	tree, err = pg_query.Parse(fmt.Sprintf("COMMENT ON POLICY %s ON %s IS ''", ident(p.Name), qualified(p.Schema, p.Table)))
	if err != nil {
		return nil, fmt.Errorf("plan roles: policy %s: %w", p.Name, err)
	}
	tree.Stmts[0].Stmt.GetCommentStmt().Comment = p.Source
	comment, err := pg_query.Deparse(tree)
	if err != nil {
		return nil, fmt.Errorf("plan roles: policy %s: %w", p.Name, err)
	}
	return []string{create, comment}, nil
}

func loadPolicies(ctx context.Context, q querier, names []string) (map[string][]policy, error) {
	rows, err := q.Query(ctx, policiesSQL, names)
	if err != nil {
		return nil, fmt.Errorf("plan roles: load policies: %w", err)
	}
	defer rows.Close()
	out := map[string][]policy{}
	for rows.Next() {
		var p policy
		if err := rows.Scan(&p.Schema, &p.Table, &p.Name, &p.Cmd, &p.Permissive, &p.Roles, &p.Source); err != nil {
			return nil, fmt.Errorf("plan roles: load policies: %w", err)
		}
		out[p.table()] = append(out[p.table()], p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("plan roles: load policies: %w", err)
	}
	return out, nil
}

func loadRLS(ctx context.Context, q querier, tables []string) (map[string]rlsState, error) {
	rows, err := q.Query(ctx, rlsSQL, tables)
	if err != nil {
		return nil, fmt.Errorf("plan roles: load row-level security: %w", err)
	}
	defer rows.Close()
	out := map[string]rlsState{}
	for rows.Next() {
		var t string
		var s rlsState
		if err := rows.Scan(&t, &s.enabled, &s.policies); err != nil {
			return nil, fmt.Errorf("plan roles: load row-level security: %w", err)
		}
		out[t] = s
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("plan roles: load row-level security: %w", err)
	}
	return out, nil
}
