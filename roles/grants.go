package roles

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	dbcatalog "github.com/airlock-dev/airlock/catalog"
	"github.com/airlock-dev/airlock/scopes"
)

// Grant kinds.
const (
	onSchema   = dbcatalog.OnSchema
	onTable    = dbcatalog.OnTable
	onSequence = dbcatalog.OnSequence
	onColumn   = dbcatalog.OnColumn
)

// grant is one privilege of one role on one object. Rel is empty for a
// schema, Col for anything but a column.
type grant struct {
	Kind, Schema, Rel, Col, Priv string
}

type grantSet map[grant]bool

// catalog is what Plan needs to know about the scope's tables.
type catalog struct {
	// columns maps an existing "schema.table" of the scope to its
	// columns, in catalog order.
	columns map[string][]string
	// kinds maps the same tables to pg_class.relkind.
	kinds map[string]string
	// sequences maps an existing write table to the sequences it owns.
	sequences map[string][][2]string
}

func loadCatalog(ctx context.Context, q querier, scope *scopes.Scope) (*catalog, error) {
	var names, writes []string
	for name := range scope.Read.Tables {
		names = append(names, name)
	}
	if scope.Write != nil {
		writes = scope.Write.Tables
		names = append(names, writes...)
	}
	cat := &catalog{columns: map[string][]string{}, kinds: map[string]string{}, sequences: map[string][][2]string{}}
	err := dbcatalog.Columns(ctx, q, names, func(c dbcatalog.Column) error {
		key := c.Schema + "." + c.Relation
		cat.columns[key] = append(cat.columns[key], c.Name)
		cat.kinds[key] = c.Kind
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("plan roles: load columns: %w", err)
	}
	if len(writes) == 0 {
		return cat, nil
	}
	seqs, err := dbcatalog.OwnedSequences(ctx, q, writes)
	if err != nil {
		return nil, fmt.Errorf("plan roles: load sequences: %w", err)
	}
	for _, s := range seqs {
		cat.sequences[s.Table] = append(cat.sequences[s.Table], [2]string{s.Schema, s.Name})
	}
	return cat, nil
}

// readableColumns lists the columns of an existing read table that its
// rule does not deny; masked columns included (see the package comment).
func readableColumns(scope *scopes.Scope, cat *catalog, table string) []string {
	rule, ok := scope.TableRule(table)
	if !ok {
		return nil
	}
	var out []string
	for _, c := range cat.columns[table] {
		if rule.ColumnAccess(c) != scopes.ColumnDenied {
			out = append(out, c)
		}
	}
	return out
}

// readGrants is everything the read role should hold.
func readGrants(scope *scopes.Scope, cat *catalog) grantSet {
	g := grantSet{}
	g.addReads(scope, cat)
	return g
}

// addReads grants SELECT on what the scope reads: a table's readable
// columns, or for a table with masked columns its masked view only
// (docs/architecture.md, Masking).
func (g grantSet) addReads(scope *scopes.Scope, cat *catalog) {
	for table, rule := range scope.Read.Tables {
		if len(rule.Mask) == 0 {
			g.addSelect(scope, table, readableColumns(scope, cat, table))
		}
	}
	g.addViews(scope, cat)
}

// unmaskedColumns is readableColumns without the masked columns.
func unmaskedColumns(scope *scopes.Scope, cat *catalog, table string) []string {
	rule, _ := scope.TableRule(table)
	var out []string
	for _, c := range readableColumns(scope, cat, table) {
		if !slices.Contains(rule.Mask, c) {
			out = append(out, c)
		}
	}
	return out
}

// writeGrants is everything the write role should hold: nothing when the
// scope has no write section.
func writeGrants(scope *scopes.Scope, cat *catalog) grantSet {
	g := grantSet{}
	w := scope.Write
	if w == nil {
		return g
	}
	g.addReads(scope, cat)
	if doRunnerWanted(scope) {
		// To call its DO runner.
		g[grant{Kind: onSchema, Schema: scope.MaskSchema(), Priv: "USAGE"}] = true
	}
	if w.Undo.On() && w.OwnTables {
		// A drop under undo moves the table into airlock_trash, or copies
		// a column's values there (docs/architecture.md, Undo). Without
		// own_tables the role cannot drop anything.
		g[grant{Kind: onSchema, Schema: "airlock_trash", Priv: "USAGE"}] = true
		g[grant{Kind: onSchema, Schema: "airlock_trash", Priv: "CREATE"}] = true
	}
	for _, table := range w.Tables {
		cols, exists := cat.columns[table]
		schema, rel := splitQualified(table)
		if w.OwnTables {
			// The write role owns its write tables (and creates new ones):
			// an owner's privileges are not grants.
			g[grant{Kind: onSchema, Schema: schema, Priv: "USAGE"}] = true
			g[grant{Kind: onSchema, Schema: schema, Priv: "CREATE"}] = true
			for k := range g {
				if (k.Kind == onColumn || k.Kind == onTable) && k.Schema == schema && k.Rel == rel {
					delete(g, k)
				}
			}
			continue
		}
		if !exists {
			continue
		}
		for _, kp := range []struct{ kind, priv string }{
			{"insert", "INSERT"}, {"update", "UPDATE"}, {"delete", "DELETE"}, {"truncate", "TRUNCATE"},
		} {
			if w.Allows(kp.kind) {
				g[grant{Kind: onTable, Schema: schema, Rel: rel, Priv: kp.priv}] = true
			}
		}
		if w.Allows("update") || w.Allows("delete") {
			if _, isRead := scope.TableRule(table); isRead {
				// Never a masked column: a migration could copy it out.
				cols = unmaskedColumns(scope, cat, table)
			}
			g.addSelect(scope, table, cols)
		}
		g[grant{Kind: onSchema, Schema: schema, Priv: "USAGE"}] = true
		for _, seq := range cat.sequences[table] {
			g[grant{Kind: onSequence, Schema: seq[0], Rel: seq[1], Priv: "USAGE"}] = true
			g[grant{Kind: onSchema, Schema: seq[0], Priv: "USAGE"}] = true
		}
	}
	return g
}

// addSelect grants SELECT on cols of table and USAGE on its schema;
// nothing when cols is empty (a table the database lacks). A table whose
// rule lists no columns gets table-level SELECT, so that a column a
// committed migration adds is readable at once, as the scope says ("{}
// allows every column"); a restricted table gets column-level grants only.
func (g grantSet) addSelect(scope *scopes.Scope, table string, cols []string) {
	if len(cols) == 0 {
		return
	}
	schema, rel := splitQualified(table)
	g[grant{Kind: onSchema, Schema: schema, Priv: "USAGE"}] = true
	if rule, ok := scope.TableRule(table); !ok || rule.Columns == nil {
		g[grant{Kind: onTable, Schema: schema, Rel: rel, Priv: "SELECT"}] = true
		return
	}
	for _, c := range cols {
		g[grant{Kind: onColumn, Schema: schema, Rel: rel, Col: c, Priv: "SELECT"}] = true
	}
}

// roleState is a role's attributes as pg_roles has them.
type roleState dbcatalog.Role

func (r roleState) locked() bool {
	return !r.Login && !r.Inherit && !r.Super && !r.CreateDB && !r.CreateRole && !r.Replication && !r.BypassRLS
}

// errNoRole is returned by loadRole for a role that does not exist.
type errNoRole string

func (e errNoRole) Error() string {
	return fmt.Sprintf("plan roles: role %q does not exist", string(e))
}

func loadRole(ctx context.Context, q querier, name string) (*roleState, error) {
	r, ok, err := dbcatalog.RoleAttributes(ctx, q, name)
	if err != nil {
		return nil, fmt.Errorf("plan roles: load role %s: %w", name, err)
	}
	if !ok {
		return nil, errNoRole(name)
	}
	state := roleState(r)
	return &state, nil
}

// planRole returns the statements that give role exactly want and make
// each of grantTo a member of it. With create false the role is not
// created when missing (a scope without a write section), only stripped
// when present.
func planRole(ctx context.Context, q querier, role string, want grantSet, grantTo []string, create bool, mayOwn []string) ([]string, error) {
	r := ident(role)
	state, err := loadRole(ctx, q, role)
	var missing errNoRole
	switch {
	case err == nil:
	case errors.As(err, &missing) && create:
		// A new role holds nothing and has no members yet.
		out := []string{fmt.Sprintf("CREATE ROLE %s NOLOGIN NOINHERIT", r)}
		for _, login := range grantTo {
			out = append(out, fmt.Sprintf("GRANT %s TO %s", r, ident(login)))
		}
		return append(out, grantStatements("GRANT", "TO", r, want)...), nil
	case errors.As(err, &missing):
		return nil, nil
	default:
		return nil, err
	}

	owned, err := dbcatalog.OwnedBy(ctx, q, role)
	if err != nil {
		return nil, fmt.Errorf("plan roles: %w", err)
	}
	for _, t := range owned {
		if !slices.Contains(mayOwn, t) {
			return nil, fmt.Errorf("plan roles: role %s owns %s, which the scope does not let it own, and an owner has every privilege on what it owns: reassign it (ALTER TABLE ... OWNER TO ...) first", role, t)
		}
	}

	var out []string
	if !state.locked() {
		out = append(out, fmt.Sprintf("ALTER ROLE %s NOLOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS", r))
	}
	memberOf, err := dbcatalog.MemberOf(ctx, q, role)
	if err != nil {
		return nil, fmt.Errorf("plan roles: %w", err)
	}
	for _, g := range memberOf {
		out = append(out, fmt.Sprintf("REVOKE %s FROM %s", ident(g), r))
	}
	if create {
		members, err := dbcatalog.Members(ctx, q, role)
		if err != nil {
			return nil, fmt.Errorf("plan roles: %w", err)
		}
		for _, login := range grantTo {
			if !slices.Contains(members, login) {
				out = append(out, fmt.Sprintf("GRANT %s TO %s", r, ident(login)))
			}
		}
	}

	held, err := loadHeld(ctx, q, role)
	if err != nil {
		return nil, err
	}
	extra, missingGrants := grantSet{}, grantSet{}
	for g := range held {
		if !want[g] {
			extra[g] = true
		}
	}
	// REVOKE of a table privilege also revokes that privilege on every
	// column of the table: those column grants are gone after the revokes.
	for g := range held {
		if g.Kind == onColumn && extra[grant{Kind: onTable, Schema: g.Schema, Rel: g.Rel, Priv: g.Priv}] {
			delete(held, g)
			delete(extra, g)
		}
	}
	for g := range want {
		if !held[g] {
			missingGrants[g] = true
		}
	}
	out = append(out, grantStatements("REVOKE", "FROM", r, extra)...)
	return append(out, grantStatements("GRANT", "TO", r, missingGrants)...), nil
}

func loadHeld(ctx context.Context, q querier, role string) (grantSet, error) {
	held := grantSet{}
	err := dbcatalog.Privileges(ctx, q, role, func(p dbcatalog.Privilege) {
		held[grant{Kind: p.Kind, Schema: p.Schema, Rel: p.Relation, Col: p.Column, Priv: p.Privilege}] = true
	})
	if err != nil {
		return nil, fmt.Errorf("plan roles: load privileges of %s: %w", role, err)
	}
	return held, nil
}

// grantStatements renders a set of grants as GRANT (verb "GRANT", prep
// "TO") or REVOKE ("REVOKE", "FROM") statements, one per object (and per
// privilege for column lists), schemas first, in a stable order.
func grantStatements(verb, prep, role string, set grantSet) []string {
	type object struct{ Kind, Schema, Rel, Priv string }
	privs := map[object][]string{} // table-level: privileges; column-level: columns
	for g := range set {
		switch g.Kind {
		case onColumn:
			o := object{g.Kind, g.Schema, g.Rel, g.Priv}
			privs[o] = append(privs[o], g.Col)
		default:
			o := object{g.Kind, g.Schema, g.Rel, ""}
			privs[o] = append(privs[o], g.Priv)
		}
	}
	order := map[string]int{onSchema: 0, onTable: 1, onSequence: 2, onColumn: 3}
	objs := make([]object, 0, len(privs))
	for o := range privs {
		objs = append(objs, o)
	}
	sort.Slice(objs, func(i, j int) bool {
		a, b := objs[i], objs[j]
		if order[a.Kind] != order[b.Kind] {
			return order[a.Kind] < order[b.Kind]
		}
		return a.Schema+"\x00"+a.Rel+"\x00"+a.Priv < b.Schema+"\x00"+b.Rel+"\x00"+b.Priv
	})
	var out []string
	for _, o := range objs {
		items := privs[o]
		sort.Strings(items)
		var target, what string
		switch o.Kind {
		case onSchema:
			target, what = "SCHEMA "+ident(o.Schema), strings.Join(items, ", ")
		case onTable:
			target, what = "TABLE "+qualified(o.Schema, o.Rel), strings.Join(items, ", ")
		case onSequence:
			target, what = "SEQUENCE "+qualified(o.Schema, o.Rel), strings.Join(items, ", ")
		case onColumn:
			quoted := make([]string, len(items))
			for i, c := range items {
				quoted[i] = ident(c)
			}
			target, what = "TABLE "+qualified(o.Schema, o.Rel), fmt.Sprintf("%s (%s)", o.Priv, strings.Join(quoted, ", "))
		}
		out = append(out, fmt.Sprintf("%s %s ON %s %s %s", verb, what, target, prep, role))
	}
	return out
}

func queryStrings(ctx context.Context, q querier, sql string, args ...any) ([]string, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("plan roles: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("plan roles: %w", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("plan roles: %w", err)
	}
	return out, nil
}

func queryOne(ctx context.Context, q querier, sql string, arg any, dest any) error {
	rows, err := q.Query(ctx, sql, arg)
	if err != nil {
		return fmt.Errorf("plan roles: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return fmt.Errorf("plan roles: %w", err)
		}
		return fmt.Errorf("plan roles: no row")
	}
	if err := rows.Scan(dest); err != nil {
		return fmt.Errorf("plan roles: %w", err)
	}
	return nil
}
