package tools

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlock-dev/airlock/sqlguard"
)

// sequenceOwnersSQL lists the tables whose columns own a sequence: serial
// columns (OWNED BY, pg_depend deptype 'a') and identity columns ('i').
// It names the sequence by schema and name, never by parsing text as a
// regclass, so it looks up exactly the name the guard rendered into the
// statement. Operators are spelled OPERATOR(pg_catalog.=) because the
// service's own queries must not depend on what its search path holds
// either (docs/architecture.md, Write statements: the read rules
// everywhere).
const sequenceOwnersSQL = `
SELECT tn.nspname, t.relname
FROM pg_catalog.pg_class s
JOIN pg_catalog.pg_namespace sn ON sn.oid OPERATOR(pg_catalog.=) s.relnamespace
JOIN pg_catalog.pg_depend d
  ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
 AND d.objid OPERATOR(pg_catalog.=) s.oid
 AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
 AND d.refobjsubid OPERATOR(pg_catalog.>) 0
 AND d.deptype OPERATOR(pg_catalog.=) ANY ('{a,i}'::pg_catalog."char"[])
JOIN pg_catalog.pg_class t ON t.oid OPERATOR(pg_catalog.=) d.refobjid
JOIN pg_catalog.pg_namespace tn ON tn.oid OPERATOR(pg_catalog.=) t.relnamespace
WHERE s.relkind OPERATOR(pg_catalog.=) 'S'
  AND sn.nspname OPERATOR(pg_catalog.=) $1::pg_catalog.name
  AND s.relname OPERATOR(pg_catalog.=) $2::pg_catalog.name`

// checkSequences makes sure every sequence a migration's column DEFAULTs
// call nextval on (MigrationStatement.Sequences) is owned by a column of a
// table the scope may write. The parse tree names the sequence; only the
// catalog knows what owns it. A DEFAULT on another sequence would make
// every later insert advance a sequence outside the scope, which the agent
// can then read back through the column.
//
// A sequence that does not exist gets the very refusal a sequence outside
// the scope gets, so the answer tells nothing about objects outside it. A
// sequence a serial or identity column of the same migration creates does
// not exist yet either: such columns need no hand-written nextval.
func (e *Env) checkSequences(ctx context.Context, pool *pgxpool.Pool, wp *sqlguard.WritePolicy, plan *sqlguard.MigrationPlan) (*sqlguard.Refusal, error) {
	for _, st := range plan.Statements {
		for _, seq := range st.Sequences {
			// The guard refuses names holding a dot: the first one splits.
			schema, name, _ := strings.Cut(seq, ".")
			owned, err := sequenceOwnedBy(ctx, pool, schema, name, wp.Tables)
			if err != nil {
				return nil, fmt.Errorf("resolve sequence %s: %w", seq, err)
			}
			if !owned {
				return &sqlguard.Refusal{
					Code:   "sequence_not_writable",
					Reason: fmt.Sprintf("sequence %s is not owned by a column of a table this scope may change", seq),
					Hint: "a DEFAULT may only call nextval on the sequence of a writable table's serial or identity column; writable tables: " +
						strings.Join(sortedKeys(wp.Tables), ", "),
				}, nil
			}
		}
	}
	return nil, nil
}

// sequenceOwnedBy reports whether schema.name is a sequence owned by a
// column of one of tables ("schema.table").
func sequenceOwnedBy(ctx context.Context, pool *pgxpool.Pool, schema, name string, tables map[string]bool) (bool, error) {
	rows, err := pool.Query(ctx, sequenceOwnersSQL, schema, name)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	owned := false
	for rows.Next() {
		var ts, tn string
		if err := rows.Scan(&ts, &tn); err != nil {
			return false, err
		}
		owned = owned || tables[ts+"."+tn]
	}
	return owned, rows.Err()
}
