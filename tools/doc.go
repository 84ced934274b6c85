// Package tools holds airlock's agent-facing tools, one file each. A tool
// is a typed handler over a scope, the SQL guard and a connection pool; it
// knows nothing of transports.
//
// Contract:
//   - Every call is answered with a tool result: refusals and failures are
//     results with isError set, their code, reason and hint in
//     _meta["airlock/error"] (every code registered in package codes),
//     never protocol errors; a result that cannot be encoded becomes the
//     failure result_not_encodable.
//   - Agent SQL goes through the guard (package sqlguard) before it reaches
//     the database, always in the extended protocol with bound parameters,
//     in a transaction that starts with SET LOCAL ROLE to the scope's role
//     and the scope's limits; reads are always rolled back; a connection
//     goes back to the pool only clean (docs/architecture.md, Connections
//     come back clean).
//   - query_readonly sends its rows once, where the session asked for them
//     (results.go; docs/architecture.md, Results).
//   - Writes are held by review's Holder for the scope's write mode; no
//     tool commits anything a reviewer has not.
//   - Every call is audited (package audit) with its decision.
//
// Layer: above roles and doctor, below server (docs/architecture.md,
// Packages and layers).
package tools
