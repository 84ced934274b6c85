// Package catalog is the one home of the PostgreSQL catalog lookups that
// roles, doctor and the read guard's catalog (tools) ask: which relations
// and columns exist, who owns what, which privileges and memberships a
// role holds. One function answers one question over pg_catalog, with
// result types shared by its callers.
//
// Contract:
//
//   - Pure pgx, no MCP and no scope logic: callers pass names
//     ("schema.table"), roles and a Querier (a pool, a connection or a
//     transaction) and decide what the answer means.
//   - Every lookup is one round trip. Columns streams its rows to a
//     callback instead of building a slice, because the read guard's
//     catalog reload (query_readonly's path) builds its own structures
//     from them.
//   - Errors are the driver's, unwrapped: each caller says what it was
//     doing in its own words, as it did before the lookups moved here.
//   - Names are compared as "schema.table" joined from the catalog's
//     unquoted names, the form scope files use.
//
// In the import order (docs/architecture.md, Packages and layers) it sits
// above sqlguard and scopes and below migrate, review, roles, doctor and
// tools.
//
// Not here yet: migrate's schema snapshot (migrate/catalog.go) and
// review's catalog queries, which are being reworked separately; they are
// the next candidates to move.
package catalog
