// Package dbconn opens airlock's connection pools from a database URL that
// lives outside the command line (an environment variable or a file only
// the service's OS user can read), and explains a failed connection in one
// line: the real cause and its fix, never the URL or its password.
//
// It is an internal helper: it imports no airlock package outside internal/,
// so any layer may use it (docs/architecture.md, Packages and layers).
package dbconn
