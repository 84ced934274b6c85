package tools

import (
	"context"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"
)

// airlock's own statements around every read (BEGIN, SET LOCAL ROLE, the
// limits, ROLLBACK, the advisory unlock) are the same on every call: each
// connection prepares them once, under names shared by all connections,
// so that a call sends only Bind/Execute for them and the database parses
// and plans none of them again. Agent SQL is never prepared: it stays an
// unnamed statement, parsed in the call's own transaction.

// statementNames names each of airlock's statement texts once per process.
var statementNames struct {
	sync.Mutex
	m map[string]string
}

func statementName(sql string) string {
	statementNames.Lock()
	defer statementNames.Unlock()
	if statementNames.m == nil {
		statementNames.m = map[string]string{}
	}
	name, ok := statementNames.m[sql]
	if !ok {
		name = fmt.Sprintf("airlock_%d", len(statementNames.m)+1)
		statementNames.m[sql] = name
	}
	return name
}

// preparedKey is where a connection keeps the names it has prepared.
const preparedKey = "airlock/prepared"

// preparedOn returns the prepared statement names of setup and then of
// more, on pg, preparing those this connection has not prepared yet. A
// connection that fails here is discarded by the caller (its error
// path), and with it what it had prepared.
func preparedOn(ctx context.Context, pg *pgconn.PgConn, setup []string, more ...string) ([]string, error) {
	done, _ := pg.CustomData()[preparedKey].(map[string]bool)
	if done == nil {
		done = map[string]bool{}
		pg.CustomData()[preparedKey] = done
	}
	names := make([]string, 0, len(setup)+len(more))
	for _, list := range [][]string{setup, more} {
		for _, sql := range list {
			name := statementName(sql)
			if !done[name] {
				if _, err := pg.Prepare(ctx, name, sql, nil); err != nil {
					return nil, fmt.Errorf("prepare airlock's own statement: %w", err)
				}
				done[name] = true
			}
			names = append(names, name)
		}
	}
	return names, nil
}
