package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"
)

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
	// A canceled call (SIGTERM, a client's cancellation) must stop its
	// statement in the database too. pgx's default handler only sets a
	// deadline on the socket; the CancelRequest it sends when closing the
	// connection runs in a goroutine that a process exiting right after
	// never lets finish, and a backend busy in a statement does not notice
	// a closed socket, so the statement ran on until statement_timeout.
	// This handler sends the CancelRequest itself and waits for it.
	cfg.ConnConfig.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: pc, DeadlineDelay: time.Second}
	}
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
