// Package pgtest gives tests a real PostgreSQL: one throwaway cluster per
// test package (or the server named by AIRLOCK_TEST_DATABASE_URL), a fresh
// seeded database per test, and fingerprints that prove a database did not
// change.
//
// A package that uses it needs
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
// Tests never skip for lack of PostgreSQL: Main fails and says how to
// install it.
//
// It is an internal helper: it imports no airlock package outside internal/,
// so any layer may use it (docs/architecture.md, Packages and layers).
package pgtest
