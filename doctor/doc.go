// Package doctor checks, before an agent ever connects, whether a scope and
// the database login that `airlock serve` would use are safe together: a
// superuser login or a table owner is not bound by the scope's roles, a
// missing or drifted role leaves the database's own wall down, and a
// plain-text connection to a remote server exposes the data on the wire.
//
// Every check gathers facts with a catalog query and judges them in a pure
// function, so the judgement is tested without a special server.
//
// Contract: Run only reads (the catalog, the server's settings, airlock's
// own tables) and never changes the database; it reports every check, so a
// failed query is a check that could not be made, not an error that hides
// the others. The judgements live in pure judge* functions; the catalog
// questions other packages also ask come from package catalog.
package doctor
