package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

var (
	dbCounter atomic.Int64

	// template is the seeded database every NewDatabase clones. It is built
	// by the first test that needs it; later tests wait for it.
	template struct {
		once sync.Once
		name string
		err  error
	}
)

// NewDatabase creates a database holding testdata/seed.sql and returns a
// superuser URL for it. The database is a clone of a template seeded once per
// test package, so this is cheap; it is dropped when the test ends (after
// rolling back any prepared transactions left in it). Tests may call it in
// parallel.
func NewDatabase(t testing.TB) string {
	t.Helper()
	AdminURL(t)
	tpl, err := seededTemplate()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return createDatabase(t, tpl)
}

// NewEmptyDatabase is NewDatabase without the seed: a database cloned from
// template0.
func NewEmptyDatabase(t testing.TB) string {
	t.Helper()
	AdminURL(t)
	return createDatabase(t, "template0")
}

func createDatabase(t testing.TB, tpl string) string {
	t.Helper()
	name := fmt.Sprintf("%s%s_%d", namePrefix, runID, dbCounter.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := withAdmin(ctx, func(admin *pgx.Conn) error {
		_, err := admin.Exec(ctx, "CREATE DATABASE "+quoteIdent(name)+" TEMPLATE "+quoteIdent(tpl))
		return err
	})
	if err != nil {
		t.Fatalf("pgtest: create database %s from %s: %v", name, tpl, err)
	}
	t.Cleanup(func() {
		if err := dropDatabase(name); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return databaseURL(name)
}

func withAdmin(ctx context.Context, fn func(*pgx.Conn) error) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("connect to the maintenance database: %w", err)
	}
	defer conn.Close(context.Background())
	return fn(conn)
}

// dropDatabase rolls back the prepared transactions left in database name
// (DROP DATABASE refuses while there are any; FORCE only ends sessions) and
// drops it.
func dropDatabase(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return withAdmin(ctx, func(admin *pgx.Conn) error {
		rows, _ := admin.Query(ctx, "SELECT gid FROM pg_prepared_xacts WHERE database = $1", name)
		gids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("drop database %s: list prepared transactions: %w", name, err)
		}
		if len(gids) > 0 {
			if err := rollbackPrepared(ctx, name, gids); err != nil {
				return fmt.Errorf("drop database %s: %w", name, err)
			}
		}
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+quoteIdent(name)+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop database %s: %w", name, err)
		}
		return nil
	})
}

// rollbackPrepared finishes prepared transactions, which only a session in
// their own database can do.
func rollbackPrepared(ctx context.Context, dbname string, gids []string) error {
	conn, err := pgx.Connect(ctx, databaseURL(dbname))
	if err != nil {
		return fmt.Errorf("connect to roll back prepared transactions: %w", err)
	}
	defer conn.Close(context.Background())
	for _, gid := range gids {
		lit, err := conn.PgConn().EscapeString(gid)
		if err != nil {
			return err
		}
		if _, err := conn.Exec(ctx, "ROLLBACK PREPARED '"+lit+"'"); err != nil {
			return fmt.Errorf("rollback prepared %q: %w", gid, err)
		}
	}
	return nil
}

// seededTemplate builds the template database once per process.
func seededTemplate() (string, error) {
	template.once.Do(func() {
		template.name = namePrefix + runID + "_template"
		template.err = buildTemplate(template.name)
	})
	return template.name, template.err
}

func buildTemplate(name string) error {
	seed, err := os.ReadFile(Testdata("seed.sql"))
	if err != nil {
		return fmt.Errorf("read seed: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err = withAdmin(ctx, func(admin *pgx.Conn) error {
		_, err := admin.Exec(ctx, "CREATE DATABASE "+quoteIdent(name)+" TEMPLATE template0")
		return err
	})
	if err != nil {
		return fmt.Errorf("create template database %s: %w", name, err)
	}
	if err := seedTemplate(ctx, name, string(seed)); err != nil {
		// Leave nothing behind on an external server.
		_ = dropDatabase(name)
		return err
	}
	return nil
}

func seedTemplate(ctx context.Context, name, seed string) error {
	conn, err := pgx.Connect(ctx, databaseURL(name))
	if err != nil {
		return fmt.Errorf("connect to template database %s: %w", name, err)
	}
	// Exec without arguments uses the simple protocol, which runs the whole
	// multi-statement script in one implicit transaction.
	_, err = conn.Exec(ctx, seed)
	conn.Close(context.Background())
	if err != nil {
		return fmt.Errorf("load %s: %w", Testdata("seed.sql"), describeSeedError(seed, err))
	}
	// No connections, not even autovacuum's, may hold the template while
	// tests clone it.
	return withAdmin(ctx, func(admin *pgx.Conn) error {
		_, err := admin.Exec(ctx, "ALTER DATABASE "+quoteIdent(name)+" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false")
		if err != nil {
			return fmt.Errorf("mark %s as a template: %w", name, err)
		}
		return nil
	})
}

// describeSeedError adds the line number of a seed error to the message.
func describeSeedError(seed string, err error) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Position <= 0 {
		return err
	}
	// Position counts characters from 1.
	line, chars := 1, int32(0)
	for i := 0; i < len(seed) && chars < pgErr.Position-1; {
		r, size := utf8.DecodeRuneInString(seed[i:])
		if r == '\n' {
			line++
		}
		i += size
		chars++
	}
	return fmt.Errorf("line %d: %w", line, err)
}

// dropTemplate removes this process's template database from an external
// server.
func dropTemplate() error {
	if template.name == "" || template.err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return withAdmin(ctx, func(admin *pgx.Conn) error {
		q := quoteIdent(template.name)
		if _, err := admin.Exec(ctx, "ALTER DATABASE "+q+" WITH IS_TEMPLATE false"); err != nil {
			return fmt.Errorf("drop template database %s: %w", template.name, err)
		}
		if _, err := admin.Exec(ctx, "DROP DATABASE "+q+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop template database %s: %w", template.name, err)
		}
		return nil
	})
}
