// Command airlock is an MCP server that gives AI agents scoped, audited,
// human-reviewed access to PostgreSQL, and the reviewer's CLI.
//
// Its one job is the command line: parse flags (one table of commands,
// usage.go, from which the help is rendered), read secrets from the
// environment or from files (never from a flag), wire the packages
// together and render their answers for a terminal. Every decision is
// made in a package below it: the MCP tools in tools and server, the scope
// in scopes, roles and doctor, reviews in review and reviewweb, the bridge
// in bridge, notifications in notify (docs/architecture.md, Packages and
// layers).
//
// Contract: exit status 0 on success, 2 for a usage mistake, 1 for any
// other failure. Text an agent wrote (its ticket, summary, SQL, the names
// in its migration, an error quoting them) is shown through
// internal/safetext (render.go).
package main
