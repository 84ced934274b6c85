package main

import (
	"context"
	"fmt"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlock-dev/airlock/internal/dbconn"
)

// openPool connects to the database named by the environment variable
// env. The URL is never printed: a failed connection is explained in one
// line (dbconn.Explain).
func openPool(ctx context.Context, env string, maxConns int32, params map[string]string) (*pgxpool.Pool, error) {
	url := os.Getenv(env)
	if url == "" {
		return nil, fmt.Errorf("environment variable %s is not set: point it at the database (the URL is never read from flags or the scope file)", env)
	}
	return dbconn.Open(ctx, env, url, dbconn.Options{MaxConns: maxConns, Params: params})
}
