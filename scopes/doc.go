// Package scopes holds the scope model: what one agent may read and write,
// loaded from a JSON file validated against an embedded JSON Schema. Its
// one job is the contract of the scope file: Parse and Load accept exactly
// the files `airlock check` accepts, with the same words for every
// problem, and fill in the defaults. It knows nothing of MCP, of the
// database or of the SQL guard.
//
// scopes sits at the bottom of airlock's packages, next to codes: the
// guard (sqlguard) imports it for the write kinds, never the other way
// round. The scope file's names live here because the file is where they
// are spelt: the write kinds (kinds.go, from which the schema's
// write.allow enum is generated), the write modes and the tool names.
//
// A row_filter's offline check (ParseRowFilter: one boolean expression
// over the table's columns, no subquery, no other table, no function
// outside pg_catalog) lives here too rather than in the guard. It is part
// of what a valid scope file is, so Parse applies it for every caller. The
// alternative, a validator the callers inject, would let any caller that
// forgot it (a test, review's recheck of the scope as applied, a new
// command) accept a scope `airlock check` refuses, silently: a rule that
// fails open. The check needs only the PostgreSQL parser, not the guard;
// sqlguard.ParseRowFilter wraps its reason in the guard's Refusal, and
// package roles checks what needs the catalog.
package scopes
