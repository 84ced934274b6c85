package pgcluster

import "github.com/airlock-dev/airlock/internal/pgbin"

// The lookup lives in pgbin, shared with the schema branch's pg_dump;
// these names stay so that callers of the cluster manager need not know.

// ErrNotFound is pgbin.ErrNotFound.
var ErrNotFound = pgbin.ErrNotFound

// InstallHint is pgbin.InstallHint.
const InstallHint = pgbin.InstallHint

// FindBinDir is pgbin.FindBinDir.
func FindBinDir() (string, error) { return pgbin.FindBinDir() }
