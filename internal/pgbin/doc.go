// Package pgbin finds the PostgreSQL programs airlock runs: the server's
// (initdb, pg_ctl, postgres) for a throwaway cluster, and client programs
// of the same installation (pg_dump for a schema branch). It is its own
// package so that the lookup exists once and a package needing pg_dump does
// not depend on the cluster manager.
package pgbin
