// Package migrate runs an already-checked migration inside one transaction on
// a real PostgreSQL server and reports exactly what it did: rows affected,
// the locks each statement took, the tables it rewrote, the schema diff and
// the risk findings only a run can observe. It is the engine behind the dry
// run, both write modes (prepared and replay) and the reviewer's replay
// commit. It knows nothing of MCP; its input is a sqlguard.MigrationPlan the
// guard has already accepted.
//
// The report's finding codes, parse-tree and dry-run alike, are registered
// in package codes (codes.Findings), which docs/findings.md is generated
// from; its risk rating is a Risk.
package migrate
