package tools

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlock-dev/airlock/catalog"
	"github.com/airlock-dev/airlock/scopes"
	"github.com/airlock-dev/airlock/sqlguard"
)

// catalogTTL bounds how stale the cached catalog may get. A miss (a scope
// table the cache does not know) reloads at once.
const catalogTTL = 30 * time.Second

// Catalog is the part of the database catalog the guard needs for one
// scope: the in-scope tables with all their columns, and the volatility
// and catalog lookup forms of every pg_catalog function. It is loaded once
// and refreshed lazily.
type Catalog struct {
	pool  *pgxpool.Pool
	scope *scopes.Scope
	log   *slog.Logger

	mu       sync.Mutex
	loadedAt time.Time
	policy   *sqlguard.Policy
	missing  []string // scope tables the database does not have
}

// NewCatalog returns a catalog for scope; nothing is loaded until first use.
func NewCatalog(pool *pgxpool.Pool, scope *scopes.Scope, log *slog.Logger) *Catalog {
	return &Catalog{pool: pool, scope: scope, log: log}
}

// Policy returns the read policy, reloading the catalog when it is older
// than catalogTTL.
func (c *Catalog) Policy(ctx context.Context) (*sqlguard.Policy, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.policy != nil && time.Since(c.loadedAt) < catalogTTL {
		return c.policy, nil
	}
	return c.reloadLocked(ctx)
}

// Reload forces a reload, for callers that saw the catalog change (a
// table created by a committed migration).
func (c *Catalog) Reload(ctx context.Context) (*sqlguard.Policy, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reloadLocked(ctx)
}

// Missing lists the scope's tables the database does not have.
func (c *Catalog) Missing() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.missing...)
}

func (c *Catalog) reloadLocked(ctx context.Context) (*sqlguard.Policy, error) {
	p, missing, err := loadPolicy(ctx, c.pool, c.scope)
	if err != nil {
		if c.policy != nil {
			// Keep serving from the old catalog; the database may be restarting.
			c.log.Warn("catalog reload failed; using cached catalog", "err", err)
			return c.policy, nil
		}
		return nil, err
	}
	if len(missing) > 0 && strings.Join(missing, ",") != strings.Join(c.missing, ",") {
		c.log.Warn("scope names tables the database does not have; they are treated as out of scope", "tables", missing)
	}
	c.policy, c.missing, c.loadedAt = p, missing, time.Now()
	return p, nil
}

// catalogFunctionsSQL loads, per pg_catalog function name, the strongest
// volatility of its overloads (max() works because 'v' > 's' > 'i';
// aggregates and window functions are in pg_proc too) and the argument
// counts of its overloads in the catalog lookup class, with whether it
// has overloads outside it.
//
// The catalog lookup class is every function that maps oids or names to
// catalog objects (docs/architecture.md, Catalog lookups). An overload is
// in it when
//
//   - it is a type's input, output, receive, send or typmod function
//     (pg_type.typinput ... typmodout): no query needs int4in(...), and
//     regclassin('public.t') and regclassout(oid) are lookups by name and
//     by oid;
//   - its argument, OUT parameter or result types include a type whose
//     values name catalog objects: an object identifier type (regclass,
//     regtype, ..., regdictionary; every pg_catalog type named reg* or
//     that oid converts to implicitly without conversion) or aclitem
//     (whose text names roles), or an array of one. A string literal
//     passed where such a type is expected is looked up by name
//     (row_security_active('public.t'), to_tsvector('s.cfg', ...)), and a
//     value of one prints as the object's name (pg_typeof, to_regclass);
//   - or they include oid, oidvector or oid[], unless it is an aggregate
//     or a cast function: format_type(oid, int), pg_get_userbyid(oid),
//     obj_description(oid), has_table_privilege(oid, text) look the
//     number up, while max(oid), min(oid), int8(oid) and oid(bigint)
//     only compare or convert it.
//
// A name with any overload in the class is refused at the argument
// counts that overload accepts, which covers functions that resolve a
// name given as text (has_table_privilege(text, text),
// row_security_active(text)) through their oid overloads of the same
// arity. xid, xid8, cid and tid are not object identifiers: they number
// transactions and row versions, and age(xid) shares its name with
// age(timestamp).
//
// The type I/O functions are gathered once into a set the planner hashes,
// and classed is materialized so that each function is classed once: as
// a correlated scan of pg_type, repeated for each aggregate below, the
// query took 0.7 s of every server's startup.
const catalogFunctionsSQL = `
WITH ids AS (
	SELECT t.oid, t.typname NOT IN ('oid', 'oidvector') AS names
	FROM pg_catalog.pg_type t
	WHERE t.typnamespace = 'pg_catalog'::pg_catalog.regnamespace
	  AND (t.typname IN ('oid', 'oidvector', 'aclitem') OR t.typname LIKE 'reg%'
	       OR EXISTS (SELECT FROM pg_catalog.pg_cast c
	                  WHERE c.castsource = 'pg_catalog.oid'::pg_catalog.regtype AND c.casttarget = t.oid
	                    AND c.castmethod = 'b' AND c.castcontext = 'i'))
), idtypes AS (
	SELECT i.oid, i.names FROM ids i
	UNION ALL
	SELECT a.oid, i.names FROM pg_catalog.pg_type a JOIN ids i ON a.typelem = i.oid AND a.typlen = -1
), procs AS (
	SELECT p.oid, p.proname, p.provolatile, p.prokind, p.pronargs, p.pronargdefaults, p.provariadic,
	       ARRAY[p.prorettype] || p.proargtypes::pg_catalog.oid[] || coalesce(p.proallargtypes, '{}') AS types
	FROM pg_catalog.pg_proc p
	WHERE p.pronamespace = 'pg_catalog'::pg_catalog.regnamespace
), io AS (
	SELECT f::pg_catalog.oid AS oid
	FROM pg_catalog.pg_type t,
	     unnest(ARRAY[t.typinput, t.typoutput, t.typreceive, t.typsend, t.typmodin, t.typmodout]) AS f
), classed AS MATERIALIZED (
	SELECT p.*,
	       p.oid IN (SELECT io.oid FROM io)
	       OR p.types && ARRAY(SELECT i.oid FROM idtypes i WHERE i.names)
	       OR (p.types && ARRAY(SELECT i.oid FROM idtypes i)
	           AND p.prokind <> 'a'
	           AND NOT EXISTS (SELECT FROM pg_catalog.pg_cast c WHERE c.castfunc = p.oid)) AS lookup
	FROM procs p
)
SELECT proname, max(provolatile)::text,
       coalesce(array_agg(pronargs - pronargdefaults - (provariadic <> 0)::int) FILTER (WHERE lookup), '{}'),
       coalesce(array_agg(CASE WHEN provariadic <> 0 THEN -1 ELSE pronargs END) FILTER (WHERE lookup), '{}'),
       bool_or(NOT lookup)
FROM classed
GROUP BY proname`

func loadPolicy(ctx context.Context, pool *pgxpool.Pool, scope *scopes.Scope) (*sqlguard.Policy, []string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	names := make([]string, 0, len(scope.Read.Tables))
	for name := range scope.Read.Tables {
		names = append(names, name)
	}
	sort.Strings(names)

	tables := map[string]*sqlguard.Table{}
	var t *sqlguard.Table
	var rule scopes.TableRule
	err := catalog.Columns(ctx, pool, names, func(c catalog.Column) error {
		// Rows come ordered by table, so a new table starts a new entry.
		if t == nil || t.Schema != c.Schema || t.Name != c.Relation {
			rule, _ = scope.TableRule(c.Schema + "." + c.Relation)
			t = &sqlguard.Table{Schema: c.Schema, Name: c.Relation, Restricted: rule.Restricted(),
				// The scope's own row filter, someone else's row-level
				// security, or a view's query: each hides rows that
				// EXPLAIN's estimates would count (sqlguard.Table.RowFiltered).
				RowFiltered: rule.RowFilter != "" || c.RowSecurity || c.Kind == catalog.KindView}
			if len(rule.Mask) > 0 {
				// Read through the view that hashes the masked columns:
				// the read role holds no grant on the table itself.
				t.ReadSchema, t.ReadName = scope.MaskSchema(), t.QualifiedName()
			}
			tables[t.QualifiedName()] = t
		}
		t.Columns = append(t.Columns, sqlguard.Column{Name: c.Name, Access: guardAccess(rule.ColumnAccess(c.Name))})
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("load catalog: %w", err)
	}
	var missing []string
	for _, n := range names {
		if tables[n] == nil {
			missing = append(missing, n)
		}
	}

	vol := map[string]byte{}
	lookup := map[string]sqlguard.LookupForms{}
	frows, err := pool.Query(ctx, catalogFunctionsSQL)
	if err != nil {
		return nil, nil, fmt.Errorf("load functions: %w", err)
	}
	for frows.Next() {
		var name, v string
		var mins, maxs []int32
		var others bool
		if err := frows.Scan(&name, &v, &mins, &maxs, &others); err != nil {
			frows.Close()
			return nil, nil, fmt.Errorf("load functions: %w", err)
		}
		vol[name] = v[0]
		if len(mins) > 0 {
			forms := sqlguard.LookupForms{Others: others}
			for i := range mins {
				forms.Args = append(forms.Args, sqlguard.ArgCount{Min: int(mins[i]), Max: int(maxs[i])})
			}
			lookup[name] = forms
		}
	}
	frows.Close()
	if err := frows.Err(); err != nil {
		return nil, nil, fmt.Errorf("load functions: %w", err)
	}
	allowed := map[string]bool{}
	for _, f := range scope.Read.Functions {
		allowed[f] = true
	}
	searchPath := scope.Read.SearchPath
	if len(searchPath) == 0 {
		searchPath = []string{"public"}
	}
	return &sqlguard.Policy{
		Tables:     tables,
		SearchPath: searchPath,
		Functions:  &sqlguard.FunctionRule{Volatility: vol, CatalogLookup: lookup, Allowed: allowed},
	}, missing, nil
}

func guardAccess(a scopes.Access) sqlguard.Access {
	switch a {
	case scopes.ColumnAllowed:
		return sqlguard.Allowed
	case scopes.ColumnMasked:
		return sqlguard.Masked
	}
	return sqlguard.Denied
}
