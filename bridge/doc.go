// Package bridge is `airlock connect`: a stdio MCP server that passes every
// message to an airlock service over Streamable HTTP and every answer back,
// for clients that only start stdio servers (Claude Desktop). It holds the
// agent's bearer token and nothing else: no database URL, no scope, so an
// agent that reads its environment or its configuration gains nothing it
// could not already do through the service's tools (docs/architecture.md,
// Transports and sessions).
//
// Contract: it relays bytes and answers its own failures with
// internal/jsonrpc errors; it imports no package that touches the database.
package bridge
