package sqlguard

// WritePolicy is what the guard needs to decide on a migration.
type WritePolicy struct {
	// Tables is the set of "schema.name" tables the migration may write
	// to or alter (scope write.tables).
	Tables map[string]bool
	// Allow is the set of statement kinds the scope allows (write.allow).
	Allow map[string]bool
	// Read is the read policy: tables a migration only reads (INSERT ...
	// SELECT, UPDATE ... FROM, subqueries) must be readable under it, and
	// its FunctionChecker decides on every function call.
	Read *Policy
}

// Finding is one observation about a migration, with a stable code, a
// one-line message and a one-line fix.
type Finding struct {
	Code    string `json:"code"`
	Level   string `json:"level"` // "info", "warning" or "danger"
	Message string `json:"message"`
	Fix     string `json:"fix,omitempty"`
	// Statement is the zero-based index of the statement it is about, or
	// -1 for the whole migration.
	Statement int `json:"statement"`
}

// MigrationStatement is one accepted statement of a migration.
type MigrationStatement struct {
	// SQL is the statement's text as the agent wrote it, trimmed.
	SQL string
	// QualifiedSQL is the statement rendered again from its checked parse
	// tree with every table and index name schema-qualified as the guard
	// resolved it: running it does not depend on search_path. Comments and
	// layout are not kept.
	QualifiedSQL string
	// Kind is one of the closed list of write kinds (scopes.WriteKinds).
	// For an ALTER TABLE with several subcommands it is the strongest of
	// Kinds.
	Kind string
	// Kinds lists every kind the statement has: one, or one per distinct
	// ALTER TABLE subcommand kind, strongest first. All of them are allowed.
	Kinds []string
	// Targets lists the qualified tables the statement writes or alters.
	Targets []string
	// IndexTargets lists the "schema.index" entries of Targets that name an
	// index (DROP INDEX, ALTER INDEX ... RENAME, COMMENT ON INDEX). The guard
	// cannot map an index to its table; the caller must check, against the
	// catalog, that each one exists and belongs to a writable table.
	IndexTargets []string
	// Reads lists the qualified tables it only reads.
	Reads []string
	// Sequences lists the "schema.sequence" names that nextval calls in
	// column DEFAULTs name, resolved with the search path like tables; the
	// guard renders each one qualified into QualifiedSQL. The guard cannot
	// tell which table owns a sequence: the caller must check, against the
	// catalog, that each one exists and is owned by a column of a writable
	// table (docs/architecture.md, Write statements: the read rules
	// everywhere).
	Sequences []string
	// DoBody is the PL/pgSQL source of a DO statement, "" for every other
	// statement. The guard only checks that it parses; its statements are
	// not inspected (finding CD101).
	DoBody string
	// SearchPathOperators lists the operators the statement uses through
	// syntax that cannot name a qualified operator (IN lists, BETWEEN, IS
	// DISTINCT FROM, NULLIF, CASE x WHEN, JOIN USING and NATURAL JOIN):
	// PostgreSQL looks them up through the search path, where pg_catalog
	// comes first but a same-named operator of a scope schema with a
	// better-matching signature would win. The caller must check, against
	// the catalog, that the scope's schemas define no operator of these
	// names.
	SearchPathOperators []string
	// HasWhere is false for an UPDATE or DELETE without a WHERE clause,
	// and true for every other statement.
	HasWhere bool
	// NotValid is true for a constraint added NOT VALID.
	NotValid bool
	// Findings are the parse-tree findings for this statement.
	Findings []Finding
}

// MigrationPlan is an accepted migration: its statements in order.
type MigrationPlan struct {
	Statements []MigrationStatement
	// Fingerprint is pg_query's fingerprint of the whole text.
	Fingerprint string
}
