package review

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
)

// A branch's database: created from the source (template or schema
// strategy, branchschema.go) and dropped once the branch is decided.

// admin connects to the maintenance database of the store's cluster:
// CREATE DATABASE ... TEMPLATE must not run from a session on the source.
func (s *Store) admin(ctx context.Context) (*pgx.Conn, error) {
	cfg := s.pool.Config().ConnConfig
	var errs []error
	for _, db := range []string{"postgres", "template1"} {
		c := cfg.Copy()
		c.Database = db
		conn, err := pgx.ConnectConfig(ctx, c)
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("connect to the maintenance database: %w", errors.Join(errs...))
}

// sourceName is the source database's name.
func (s *Store) sourceName(ctx context.Context) (string, error) {
	var name string
	err := s.pool.QueryRow(ctx, "SELECT current_database()").Scan(&name)
	return name, err
}

// templateRetries bounds how often the template strategy tries again
// after PostgreSQL found the source in use; PostgreSQL itself waits up to
// five seconds for other sessions to leave before it reports that.
const (
	templateRetries = 1
	templateWait    = 200 * time.Millisecond
)

func (s *Store) createDatabase(ctx context.Context, name string, spec BranchSpec) error {
	source, err := s.sourceName(ctx)
	if err != nil {
		return fmt.Errorf("create branch: %w", err)
	}
	admin, err := s.admin(ctx)
	if err != nil {
		return fmt.Errorf("create branch: %w", err)
	}
	defer admin.Close(context.WithoutCancel(ctx))
	if spec.Strategy == StrategySchema {
		if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE template0"); err != nil {
			return fmt.Errorf("create branch database: %w", err)
		}
		if err := s.copySchema(ctx, name, spec); err != nil {
			return fmt.Errorf("create branch: %w", err)
		}
		return nil
	}
	stmt := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize() + " TEMPLATE " + pgx.Identifier{source}.Sanitize()
	for attempt := 0; ; attempt++ {
		// Our own idle connections count as users of the source.
		s.pool.Reset()
		_, err := admin.Exec(ctx, stmt)
		if err == nil {
			return nil
		}
		if sqlstate(err) != pgerrcode.ObjectInUse {
			return fmt.Errorf("create branch database: %w", err)
		}
		if attempt == templateRetries {
			var n int
			_ = admin.QueryRow(ctx, "SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE datname = $1", source).Scan(&n)
			return &SourceInUseError{Source: source, Connections: n}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(templateWait):
		}
	}
}

// dropDatabase drops a branch database, ending its sessions.
func (s *Store) dropDatabase(ctx context.Context, name string) error {
	if !branchDBPattern.MatchString(name) {
		return fmt.Errorf("drop branch: unexpected database name %q", name)
	}
	admin, err := s.admin(ctx)
	if err != nil {
		return fmt.Errorf("drop branch: %w", err)
	}
	defer admin.Close(context.WithoutCancel(ctx))
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop branch database %s: %w", name, err)
	}
	return nil
}

// finishDrop drops a decided branch's database and notes it.
func (s *Store) finishDrop(ctx context.Context, id, name string) error {
	if err := s.dropDatabase(ctx, name); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, "UPDATE airlock.branches SET dropped = true WHERE id = $1", id)
	return err
}
