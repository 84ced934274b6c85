package roles

import (
	"context"
	"fmt"
	"slices"

	"github.com/airlock-dev/airlock/scopes"
)

// A scope with undo on captures what each committed change does to its
// write tables (docs/architecture.md, Undo): every write table gets
// statement triggers with transition tables that call
// airlock.capture_rows, which records the before and after images of the
// rows a statement touched, and only inside a commit that asked for it
// (airlock.capture set). A scope with undo off has none.

// captureTriggers are the triggers each write table gets, by name.
var captureTriggers = []struct{ name, def string }{
	{"airlock_capture_ins", "AFTER INSERT ON %s REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION airlock.capture_rows()"},
	{"airlock_capture_upd", "AFTER UPDATE ON %s REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION airlock.capture_rows()"},
	{"airlock_capture_del", "AFTER DELETE ON %s REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION airlock.capture_rows()"},
	{"airlock_capture_trunc", "BEFORE TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION airlock.capture_rows()"},
}

// captureStateSQL lists the capture triggers on the given tables (that
// exist, as ordinary or partitioned tables) as table, trigger pairs. It
// reads the catalog rather than calling to_regprocedure, which fails for a
// login without USAGE on the airlock schema (doctor runs as any login).
const captureStateSQL = `
SELECT n.nspname || '.' || c.relname, coalesce(t.tgname, '')
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_trigger t ON t.tgrelid = c.oid AND t.tgname LIKE 'airlock\_capture\_%' AND NOT t.tgisinternal
WHERE n.nspname || '.' || c.relname = ANY($1) AND c.relkind IN ('r', 'p')
  AND EXISTS (SELECT 1 FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace
              WHERE pn.nspname = 'airlock' AND p.proname = 'capture_rows' AND p.pronargs = 0)`

// planCapture returns what makes the capture triggers exist exactly on
// the write tables of a scope with undo on.
func planCapture(ctx context.Context, q querier, scope *scopes.Scope) ([]string, error) {
	if scope.Write == nil {
		return nil, nil
	}
	pairs, err := queryPairs(ctx, q, captureStateSQL, scope.Write.Tables)
	if err != nil {
		return nil, err
	}
	have := map[string][]string{}
	var tables []string
	for _, p := range pairs {
		if _, ok := have[p[0]]; !ok {
			tables = append(tables, p[0])
			have[p[0]] = nil
		}
		if p[1] != "" {
			have[p[0]] = append(have[p[0]], p[1])
		}
	}
	slices.Sort(tables)
	var out []string
	for _, t := range tables {
		schema, rel := splitQualified(t)
		q := qualified(schema, rel)
		for _, tr := range captureTriggers {
			exists := slices.Contains(have[t], tr.name)
			switch {
			case scope.Write.Undo.On() && !exists:
				out = append(out, "CREATE TRIGGER "+ident(tr.name)+" "+fmt.Sprintf(tr.def, q))
			case !scope.Write.Undo.On() && exists:
				out = append(out, "DROP TRIGGER "+ident(tr.name)+" ON "+q)
			}
		}
	}
	return out, nil
}
