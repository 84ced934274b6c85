// Package sqlguard parses SQL with the real PostgreSQL parser (pg_query_go)
// and decides, on the parse tree alone, whether a statement may run under a
// policy. Its one job: CheckRead and CheckMigration accept a statement or
// refuse it with a stable code (package codes), and an accepted migration
// comes back as a plan (kinds, targets, the qualified rendering that is
// what runs, parse-tree findings) the rest of airlock runs and reviews.
//
// It knows nothing of MCP or of the database: everything it needs to know
// about the catalog is handed to it in a Policy. It imports only codes and
// scopes, the two packages below it (scopes for the write kinds and the
// offline row_filter check); nothing it imports may import it.
package sqlguard
