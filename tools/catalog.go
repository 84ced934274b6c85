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

	"github.com/airlock-dev/airlock/scopes"
	"github.com/airlock-dev/airlock/sqlguard"
)

// catalogTTL bounds how stale the cached catalog may get. A miss (a scope
// table the cache does not know) reloads at once.
const catalogTTL = 30 * time.Second

// Catalog is the part of the database catalog the guard needs for one
// scope: the in-scope tables with all their columns, and the volatility of
// every pg_catalog function. It is loaded once and refreshed lazily.
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

const catalogColumnsSQL = `
SELECT n.nspname, c.relname, a.attname
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND (n.nspname || '.' || c.relname) = ANY($1)
ORDER BY n.nspname, c.relname, a.attnum`

// Aggregates and window functions are in pg_proc too. max() picks the
// strongest volatility over all overloads because 'v' > 's' > 'i'.
const catalogFunctionsSQL = `
SELECT p.proname, max(p.provolatile)::text
FROM pg_catalog.pg_proc p
WHERE p.pronamespace = 'pg_catalog'::regnamespace
GROUP BY p.proname`

func loadPolicy(ctx context.Context, pool *pgxpool.Pool, scope *scopes.Scope) (*sqlguard.Policy, []string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	names := make([]string, 0, len(scope.Read.Tables))
	for name := range scope.Read.Tables {
		names = append(names, name)
	}
	sort.Strings(names)

	rows, err := pool.Query(ctx, catalogColumnsSQL, names)
	if err != nil {
		return nil, nil, fmt.Errorf("load catalog: %w", err)
	}
	tables := map[string]*sqlguard.Table{}
	var t *sqlguard.Table
	var rule scopes.TableRule
	for rows.Next() {
		var schema, rel, col string
		if err := rows.Scan(&schema, &rel, &col); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("load catalog: %w", err)
		}
		// Rows come ordered by table, so a new table starts a new entry.
		if t == nil || t.Schema != schema || t.Name != rel {
			rule, _ = scope.TableRule(schema + "." + rel)
			t = &sqlguard.Table{Schema: schema, Name: rel, Restricted: rule.Restricted()}
			if len(rule.Mask) > 0 {
				// Read through the view that hashes the masked columns:
				// the read role holds no grant on the table itself.
				t.ReadSchema, t.ReadName = scope.MaskSchema(), t.QualifiedName()
			}
			tables[t.QualifiedName()] = t
		}
		t.Columns = append(t.Columns, sqlguard.Column{Name: col, Access: guardAccess(rule.ColumnAccess(col))})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("load catalog: %w", err)
	}
	var missing []string
	for _, n := range names {
		if tables[n] == nil {
			missing = append(missing, n)
		}
	}

	vol := map[string]byte{}
	frows, err := pool.Query(ctx, catalogFunctionsSQL)
	if err != nil {
		return nil, nil, fmt.Errorf("load functions: %w", err)
	}
	for frows.Next() {
		var name, v string
		if err := frows.Scan(&name, &v); err != nil {
			frows.Close()
			return nil, nil, fmt.Errorf("load functions: %w", err)
		}
		vol[name] = v[0]
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
		Functions:  &sqlguard.FunctionRule{Volatility: vol, Allowed: allowed},
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
