package roles

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	dbcatalog "github.com/airlock-dev/airlock/catalog"
	"github.com/airlock-dev/airlock/scopes"
)

// Masked columns (docs/architecture.md, Masking). A table with masked
// columns is read through a security-barrier view in the scope's mask
// schema, named after the table ("public.customers"), owned by the mask
// role. The view returns the table's readable columns with every masked
// one replaced by "masked:" and the first 12 bytes, in hex, of the
// HMAC-SHA-256 of the value's text under the scope's key. The key sits in
// the mask schema's mask_key table (as the HMAC's inner and outer pads)
// where only the mask role can read it. The read and write roles may
// select the view and never the masked column itself, so an agent holding
// a login with the read role can neither read a masked value nor hash a
// guess of its own to compare.

// MaskedViews maps each masked table of the scope to its view, as
// "schema.table" → [mask schema, view name]. The read guard rewrites reads
// of the table to the view.
func MaskedViews(scope *scopes.Scope) map[string][2]string {
	out := map[string][2]string{}
	for table, rule := range scope.Read.Tables {
		if len(rule.Mask) > 0 {
			out[table] = [2]string{scope.MaskSchema(), table}
		}
	}
	return out
}

// maskedTables lists the scope's existing read tables with masked columns,
// sorted.
func maskedTables(scope *scopes.Scope, cat *catalog) []string {
	var out []string
	for table, rule := range scope.Read.Tables {
		if len(rule.Mask) > 0 && len(cat.columns[table]) > 0 {
			out = append(out, table)
		}
	}
	sort.Strings(out)
	return out
}

// maskGrants is what the mask role holds: SELECT on the masked tables'
// readable columns (the masked ones included: the views hash them), the
// key, and its own schema (an owner of views must have CREATE there).
func maskGrants(scope *scopes.Scope, cat *catalog) grantSet {
	g := grantSet{}
	tables := maskedTables(scope, cat)
	if len(tables) == 0 {
		return g
	}
	for _, t := range tables {
		schema, rel := splitQualified(t)
		g[grant{Kind: onSchema, Schema: schema, Priv: "USAGE"}] = true
		for _, c := range readableColumns(scope, cat, t) {
			g[grant{Kind: onColumn, Schema: schema, Rel: rel, Col: c, Priv: "SELECT"}] = true
		}
	}
	ms := scope.MaskSchema()
	g[grant{Kind: onSchema, Schema: ms, Priv: "USAGE"}] = true
	g[grant{Kind: onSchema, Schema: ms, Priv: "CREATE"}] = true
	g[grant{Kind: onTable, Schema: ms, Rel: "mask_key", Priv: "SELECT"}] = true
	return g
}

// addViews grants SELECT on the masked tables' views (and USAGE on the mask
// schema) to a role that reads the scope.
func (g grantSet) addViews(scope *scopes.Scope, cat *catalog) {
	tables := maskedTables(scope, cat)
	if len(tables) == 0 {
		return
	}
	g[grant{Kind: onSchema, Schema: scope.MaskSchema(), Priv: "USAGE"}] = true
	for _, t := range tables {
		g[grant{Kind: onTable, Schema: scope.MaskSchema(), Rel: t, Priv: "SELECT"}] = true
	}
}

// maskExpr is the SQL of one masked column in a view: NULL stays NULL.
func maskExpr(schema, col string) string {
	key := func(pad string) string {
		return fmt.Sprintf("(SELECT k.%s FROM %s.mask_key k)", pad, ident(schema))
	}
	return fmt.Sprintf("CASE WHEN %[1]s IS NULL THEN NULL ELSE 'masked:' || pg_catalog.encode(pg_catalog.substr("+
		"pg_catalog.sha256(%[2]s || pg_catalog.sha256(%[3]s || pg_catalog.convert_to(%[1]s::text, 'UTF8'))), 1, 12), 'hex') END",
		ident(col), key("opad"), key("ipad"))
}

// viewSQL is a masked table's view definition, its select list in the
// table's column order: every readable column, masked ones hashed.
func viewSQL(scope *scopes.Scope, cat *catalog, table string) string {
	rule, _ := scope.TableRule(table)
	schema, rel := splitQualified(table)
	cols := readableColumns(scope, cat, table)
	items := make([]string, len(cols))
	for i, c := range cols {
		if slices.Contains(rule.Mask, c) {
			items[i] = maskExpr(scope.MaskSchema(), c) + " AS " + ident(c)
		} else {
			items[i] = ident(c)
		}
	}
	return "SELECT " + strings.Join(items, ", ") + " FROM " + qualified(schema, rel)
}

// viewState is a masked view as the catalog has it.
type viewState struct {
	comment string
	columns []string
}

const viewsSQL = `
SELECT c.relname, coalesce(pg_catalog.obj_description(c.oid, 'pg_class'), ''),
	ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum)
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relkind = 'v'`

// maskState is what the catalog holds of a scope's mask schema.
type maskState struct {
	schema bool                 // the schema exists
	keyed  bool                 // its key is made
	views  map[string]viewState // its views, by name
}

func loadMaskState(ctx context.Context, q querier, scope *scopes.Scope) (*maskState, error) {
	ms := scope.MaskSchema()
	st := &maskState{views: map[string]viewState{}}
	if err := queryOne(ctx, q, "SELECT pg_catalog.to_regnamespace($1) IS NOT NULL", ms, &st.schema); err != nil {
		return nil, err
	}
	if !st.schema {
		return st, nil
	}
	rows, err := q.Query(ctx, viewsSQL, ms)
	if err != nil {
		return nil, fmt.Errorf("plan roles: load masked views: %w", err)
	}
	for rows.Next() {
		var name string
		var v viewState
		if err := rows.Scan(&name, &v.comment, &v.columns); err != nil {
			rows.Close()
			return nil, fmt.Errorf("plan roles: load masked views: %w", err)
		}
		st.views[name] = v
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("plan roles: load masked views: %w", err)
	}
	table, err := dbcatalog.RelationExists(ctx, q, qualified(ms, "mask_key"))
	if err != nil {
		return nil, fmt.Errorf("plan roles: %w", err)
	}
	if !table {
		return st, nil
	}
	readable, err := dbcatalog.MaySelect(ctx, q, qualified(ms, "mask_key"))
	if err != nil {
		return nil, fmt.Errorf("plan roles: %w", err)
	}
	if !readable {
		// doctor, as a login that may not see the key: only the admin's
		// plan makes one, and that plan can look.
		st.keyed = true
		return st, nil
	}
	// Asked only once the table is known to exist and be readable: an
	// error inside Apply's transaction would abort it.
	if err := queryOne(ctx, q, "SELECT EXISTS (SELECT 1 FROM "+qualified(ms, "mask_key")+") WHERE $1::int = 1", 1, &st.keyed); err != nil {
		return nil, err
	}
	return st, nil
}

// planMaskSchema returns what makes the scope's mask schema and key exist:
// made by the admin, the key table readable by the mask role only.
//
// The schema also holds the scope's DO runner, when the scope allows DO.
func planMaskSchema(scope *scopes.Scope, cat *catalog, st *maskState) []string {
	masked := len(maskedTables(scope, cat)) > 0
	if !masked && !doRunnerWanted(scope) {
		return nil
	}
	ms := scope.MaskSchema()
	var out []string
	if !st.schema {
		out = append(out, "CREATE SCHEMA "+ident(ms), "REVOKE ALL ON SCHEMA "+ident(ms)+" FROM PUBLIC")
	}
	if masked && !st.keyed {
		out = append(out,
			"CREATE TABLE IF NOT EXISTS "+qualified(ms, "mask_key")+" (ipad bytea NOT NULL, opad bytea NOT NULL)",
			"REVOKE ALL ON "+qualified(ms, "mask_key")+" FROM PUBLIC",
			makeKeySQL(scope))
	}
	return out
}

// planMaskViews returns what makes the mask schema hold exactly the
// scope's masked views: each made (or made anew when its definition
// changed) and owned by the mask role, to run once the mask role holds its
// grants; and the drops of the views of tables that no longer have masks,
// to run once no role plan revokes anything on them any more.
func planMaskViews(scope *scopes.Scope, cat *catalog, st *maskState) (out, drops []string) {
	tables := maskedTables(scope, cat)
	ms := scope.MaskSchema()
	var gone []string
	for name := range st.views {
		if !slices.Contains(tables, name) {
			gone = append(gone, name)
		}
	}
	sort.Strings(gone)
	for _, name := range gone {
		drops = append(drops, "DROP VIEW "+qualified(ms, name))
	}
	for _, t := range tables {
		body := viewSQL(scope, cat, t)
		h, ok := st.views[t]
		if ok && h.comment == body {
			continue
		}
		view := qualified(ms, t)
		if ok {
			out = append(out, "DROP VIEW "+view)
		}
		out = append(out,
			"CREATE VIEW "+view+" WITH (security_barrier) AS "+body,
			"ALTER VIEW "+view+" OWNER TO "+ident(scope.MaskRole()),
			"COMMENT ON VIEW "+view+" IS "+dollarQuoted(body))
		if ok {
			// A view made anew has none of the old one's grants, which the
			// role plans count as held.
			out = append(out, "GRANT SELECT ON "+view+" TO "+ident(scope.ReadRole()))
			if scope.Write != nil {
				out = append(out, "GRANT SELECT ON "+view+" TO "+ident(scope.WriteRole()))
			}
		}
	}
	return out, drops
}

// maskOwned lists what the mask role may own: everything in its schema.
func (st *maskState) owned(scope *scopes.Scope) []string {
	var out []string
	for name := range st.views {
		out = append(out, scope.MaskSchema()+"."+name)
	}
	return out
}

// makeKeySQL makes the scope's masking key once: the key an older airlock
// kept in airlock.mask_keys when there is one (masked values keep their
// hashes), else 32 bytes from PostgreSQL's strong random source (behind
// gen_random_uuid). Only the HMAC pads are stored.
func makeKeySQL(scope *scopes.Scope) string {
	ms := qualified(scope.MaskSchema(), "mask_key")
	return fmt.Sprintf(`DO $key$
DECLARE
	k bytea;
	ip bytea;
	op bytea;
BEGIN
	IF EXISTS (SELECT 1 FROM %[1]s) THEN
		RETURN;
	END IF;
	IF pg_catalog.to_regclass('airlock.mask_keys') IS NOT NULL THEN
		EXECUTE 'SELECT key FROM airlock.mask_keys WHERE scope = $1' INTO k USING %[2]s;
	END IF;
	IF k IS NULL OR length(k) > 64 THEN
		k := pg_catalog.sha256(pg_catalog.convert_to(gen_random_uuid()::text || gen_random_uuid()::text || gen_random_uuid()::text, 'UTF8'));
	END IF;
	k := k || pg_catalog.decode(repeat('00', 64 - length(k)), 'hex');
	ip := k;
	op := k;
	FOR i IN 0..63 LOOP
		ip := pg_catalog.set_byte(ip, i, pg_catalog.get_byte(k, i) # 54);
		op := pg_catalog.set_byte(op, i, pg_catalog.get_byte(k, i) # 92);
	END LOOP;
	INSERT INTO %[1]s (ipad, opad) VALUES (ip, op);
END $key$`, ms, literal(scope.Name))
}
