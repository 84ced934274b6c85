// Package demo is `airlock demo`: a one-command tour of airlock on a
// throwaway PostgreSQL. It starts a private cluster, loads a small SaaS
// database (customers with PII, orders, invoices, and a table the agent must
// never see), writes a scope for it, and plays a scripted agent session
// through the real MCP protocol against `airlock serve`, then the
// reviewer's side through the real `airlock pending|show|commit` commands.
//
// Everything it starts is stopped and removed when the tour ends, fails or
// is interrupted, unless Options.Keep asks to leave the database running
// for a real agent; Stop ends a kept demo.
//
// It drives the real airlock binary rather than its packages, so it imports no
// airlock package outside internal/ and any layer may use it
// (docs/architecture.md, Packages and layers).
package demo
