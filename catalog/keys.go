package catalog

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// KeyColumns returns the columns of rel's primary key, or else of its
// replica identity index, in key order; nil when it has neither. rel is
// named as SQL names it ("schema.table", quoted where needed).
func KeyColumns(ctx context.Context, q Querier, rel string) ([]string, error) {
	rows, err := q.Query(ctx, `
SELECT a.attname FROM pg_catalog.pg_index i
CROSS JOIN LATERAL pg_catalog.unnest(i.indkey) WITH ORDINALITY AS k(attnum, pos)
JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = pg_catalog.to_regclass($1) AND (i.indisprimary OR i.indisreplident)
ORDER BY i.indisprimary DESC, i.indexrelid, k.pos`, rel)
	if err != nil {
		return nil, err
	}
	cols, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	// Only the first index's columns (a primary key sorts first).
	seen := map[string]bool{}
	var out []string
	for _, c := range cols {
		if seen[c] {
			break
		}
		seen[c] = true
		out = append(out, c)
	}
	return out, nil
}
