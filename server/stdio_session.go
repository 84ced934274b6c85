package server

import (
	"sync/atomic"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
)

// stdioSession is the one MCP session of a stdio server: what the client
// said of itself at initialize (airlock reads its capabilities to decide
// where rows go, docs/architecture.md, Results) and the channel the tools'
// progress notifications leave by. airlock sends the client no requests
// (sampling, elicitation, roots), so a message without a method is never
// an answer it waits for.
type stdioSession struct {
	notifications chan mcp.JSONRPCNotification
	initialized   atomic.Bool
	info          atomic.Pointer[mcp.Implementation]
	caps          atomic.Pointer[mcp.ClientCapabilities]
	version       atomic.Pointer[string]
	level         atomic.Pointer[mcp.LoggingLevel]
}

var (
	_ mcpserver.SessionWithClientInfo      = (*stdioSession)(nil)
	_ mcpserver.SessionWithProtocolVersion = (*stdioSession)(nil)
	_ mcpserver.SessionWithLogging         = (*stdioSession)(nil)
)

func newStdioSession() *stdioSession {
	return &stdioSession{notifications: make(chan mcp.JSONRPCNotification, 100)}
}

func (s *stdioSession) SessionID() string { return "stdio" }

func (s *stdioSession) NotificationChannel() chan<- mcp.JSONRPCNotification { return s.notifications }

func (s *stdioSession) Initialize() { s.initialized.Store(true) }

func (s *stdioSession) Initialized() bool { return s.initialized.Load() }

func (s *stdioSession) GetClientInfo() mcp.Implementation {
	if p := s.info.Load(); p != nil {
		return *p
	}
	return mcp.Implementation{}
}

func (s *stdioSession) SetClientInfo(info mcp.Implementation) { s.info.Store(&info) }

func (s *stdioSession) GetClientCapabilities() mcp.ClientCapabilities {
	if p := s.caps.Load(); p != nil {
		return *p
	}
	return mcp.ClientCapabilities{}
}

func (s *stdioSession) SetClientCapabilities(caps mcp.ClientCapabilities) { s.caps.Store(&caps) }

func (s *stdioSession) ProtocolVersion() string {
	if p := s.version.Load(); p != nil {
		return *p
	}
	return ""
}

// SetProtocolVersion records the version negotiated at initialize.
func (s *stdioSession) SetProtocolVersion(v string) { s.version.Store(&v) }

func (s *stdioSession) SetLogLevel(level mcp.LoggingLevel) { s.level.Store(&level) }

func (s *stdioSession) GetLogLevel() mcp.LoggingLevel {
	if p := s.level.Load(); p != nil {
		return *p
	}
	return mcp.LoggingLevelError
}
