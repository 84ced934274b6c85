// Package server wires airlock's tools into an MCP server for one scope:
// it decides which tools exist, prepares airlock's own schema, and serves
// MCP over stdio (ServeStdio) or Streamable HTTP (ListenHTTP), on a TCP
// address or a Unix socket (docs/architecture.md, Transports and sessions).
// The whole tool set is visible here in one place.
//
// Contract:
//   - New refuses to start when doctor's startup checks fail.
//   - An agent-side server (stdio, the agent login) lists the read tools
//     only; the service (HTTP) lists the write tools too.
//   - Over stdio, airlock's own loop reads each message once and hands it
//     to mcp-go's MCPServer.HandleMessage; a message over MaxFrameBytes is
//     refused unread; every request gets an answer; a signal ends the
//     server and calls in flight are answered, canceled.
//   - Over HTTP every request carries a bearer token, and each MCP session
//     is its own agent session (audit id, branch).
//
// Layer: above tools, below cmd/airlock.
package server
