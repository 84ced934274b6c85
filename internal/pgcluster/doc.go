// Package pgcluster runs a throwaway PostgreSQL server: initdb into a
// directory, start it on a private port and Unix socket, stop it and remove
// it. It backs the test helpers (internal/pgtest) and `airlock demo`.
//
// The server is tuned for speed, not durability (fsync, full_page_writes and
// synchronous_commit are off, authentication is trust): never keep data in it
// you want back.
//
// When the calling process is root, initdb, pg_ctl and postgres run as the
// `postgres` OS user, because PostgreSQL refuses to run as root.
//
// It is an internal helper: it imports no airlock package outside internal/,
// so any layer may use it (docs/architecture.md, Packages and layers).
package pgcluster
