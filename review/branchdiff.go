package review

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlock-dev/airlock/migrate"
)

// Comparing a branch's write tables with the source's, with migrate's
// catalog snapshot: at merge (drift) and for show.

// readTableSchema reads tables' schema in a transaction of its own:
// migrate.ReadTableSchema sets the search_path for the transaction.
func readTableSchema(ctx context.Context, pool *pgxpool.Pool, tables []string) (*migrate.TableSchema, error) {
	var out *migrate.TableSchema
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var err error
		out, err = migrate.ReadTableSchema(ctx, tx, tables)
		return err
	})
	return out, err
}

// schemaDrift says, in words, how the source's write tables after the
// replay (d's from side) differ from the branch's.
func schemaDrift(d migrate.TableDiff) []string {
	var diffs []string
	for _, l := range d.Added {
		diffs = append(diffs, "only on the branch: "+l)
	}
	for _, l := range d.Removed {
		diffs = append(diffs, "only on the source after the replay: "+l)
	}
	return diffs
}

// SchemaDiff compares branch b's write tables with the source's: lines
// only on the source start with "- ", lines only on the branch with "+ ".
func (s *Store) SchemaDiff(ctx context.Context, b *Branch) ([]string, error) {
	bpool, err := s.OpenBranch(ctx, b)
	if err != nil {
		return nil, err
	}
	defer bpool.Close()
	branch, err := readTableSchema(ctx, bpool, b.Tables)
	if err != nil {
		return nil, fmt.Errorf("read branch %s's schema: %w", b.ID, err)
	}
	source, err := readTableSchema(ctx, s.pool, b.Tables)
	if err != nil {
		return nil, fmt.Errorf("read the source's schema: %w", err)
	}
	d := migrate.CompareTableSchemas(source, branch)
	var out []string
	for _, l := range d.Removed {
		out = append(out, "- "+l)
	}
	for _, l := range d.Added {
		out = append(out, "+ "+l)
	}
	return out, nil
}
