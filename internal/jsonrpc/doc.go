// Package jsonrpc encodes the JSON-RPC 2.0 error responses airlock writes
// itself, outside mcp-go: refused stdio frames, the connect bridge's own
// failures and HTTP errors. One encoding, so that every client finds the
// same shape.
//
// It is an internal helper: it imports no airlock package outside internal/,
// so any layer may use it (docs/architecture.md, Packages and layers).
package jsonrpc
