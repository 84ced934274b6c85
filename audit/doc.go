// Package audit records every tool call and every review action: as a JSON
// line on stderr through log/slog at once, and as a row in
// airlock.audit_log written in the background so that auditing never adds a
// round trip to a tool call. Its one job: every Event recorded is on
// stderr, and in the table unless the queue was full (which is logged);
// recording never blocks or fails the action audited. Each row's decision
// is a Decision, and the database, not the caller, stamps the login that
// wrote it (docs/architecture.md, Principals).
package audit
