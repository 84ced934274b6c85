package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlock-dev/airlock/scopes"
	"github.com/airlock-dev/airlock/server"
)

func cmdServe(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	scopePath := fs.String("scope", "", "scope file (JSON)")
	allowOwner := fs.Bool("allow-owner", false, "start even when the login role is a superuser or owns the scope's tables (development only)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *scopePath == "" {
		fmt.Fprintln(stderr, "airlock serve: --scope FILE is required")
		return errUsage
	}
	scope, err := scopes.Load(*scopePath)
	if err != nil {
		fmt.Fprint(stderr, scopeErrorText(*scopePath, err))
		return errReported
	}
	logger := newLogger(stderr)
	pool, err := openPool(ctx, scope.URLEnv(), 8, map[string]string{
		// airlock's own catalog reads (list_tables, describe_table) must
		// not queue behind a prepared change's ACCESS EXCLUSIVE lock.
		"lock_timeout": "5000",
	})
	if err != nil {
		return err
	}
	defer pool.Close()

	srv, err := server.New(ctx, server.Config{Scope: scope, Pool: pool, Logger: logger, AllowOwner: *allowOwner})
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	defer srv.Close()
	return srv.ServeStdio(ctx, stdin, stdout)
}

// openPool connects to the database named by the environment variable
// env. The URL is never printed: connection errors are reported without it.
func openPool(ctx context.Context, env string, maxConns int32, params map[string]string) (*pgxpool.Pool, error) {
	url := os.Getenv(env)
	if url == "" {
		return nil, fmt.Errorf("environment variable %s is not set: point it at the database (the URL is never read from flags or the scope file)", env)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("%s is not a valid PostgreSQL URL", env)
	}
	cfg.MaxConns = maxConns
	cfg.ConnConfig.RuntimeParams["application_name"] = "airlock"
	for k, v := range params {
		cfg.ConnConfig.RuntimeParams[k] = v
	}
	cfg.ConnConfig.ConnectTimeout = 10 * time.Second
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(cctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to the database in %s: %w", env, err)
	}
	if err := pool.Ping(cctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to the database in %s: %w", env, err)
	}
	return pool, nil
}
