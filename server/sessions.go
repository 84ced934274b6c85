package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"

	"github.com/google/uuid"
	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/airlock-dev/airlock/tools"
)

// sessionIDs mints and checks Streamable HTTP session ids. Each id
// belongs to the token that opened the session: another token can neither
// use nor end it.
type sessionIDs struct {
	mu    sync.Mutex
	owner map[string]int // session id → token index
}

func newSessionIDs() *sessionIDs { return &sessionIDs{owner: map[string]int{}} }

// ResolveSessionIdManager binds the manager to the request's token. mcp-go
// passes a nil request from its own housekeeping (idle sweeps, shutdown),
// which may end any session.
func (s *sessionIDs) ResolveSessionIdManager(r *http.Request) mcpserver.SessionIdManager {
	if r == nil {
		return boundIDs{ids: s, any: true}
	}
	return boundIDs{ids: s, token: tokenOf(r.Context()).index}
}

// owns reports whether session id is live and was opened with token.
func (s *sessionIDs) owns(id string, token int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	owner, ok := s.owner[id]
	return ok && token >= 0 && owner == token
}

type boundIDs struct {
	ids   *sessionIDs
	token int
	any   bool
}

var errNoSession = errors.New("session not found: it ended, idled out or belongs to another token; initialize a new one")

func (b boundIDs) Generate() string {
	id := "mcp-session-" + uuid.NewString()
	b.ids.mu.Lock()
	b.ids.owner[id] = b.token
	b.ids.mu.Unlock()
	return id
}

func (b boundIDs) Validate(id string) (terminated bool, err error) {
	b.ids.mu.Lock()
	defer b.ids.mu.Unlock()
	owner, ok := b.ids.owner[id]
	if !ok || (!b.any && (b.token < 0 || owner != b.token)) {
		return false, errNoSession
	}
	return false, nil
}

func (b boundIDs) Terminate(id string) (notAllowed bool, err error) {
	b.ids.mu.Lock()
	defer b.ids.mu.Unlock()
	owner, ok := b.ids.owner[id]
	if !ok {
		return false, nil
	}
	if !b.any && owner != b.token {
		return true, nil
	}
	delete(b.ids.owner, id)
	return false, nil
}

// sessionEnvs holds the Env of every live HTTP agent session.
type sessionEnvs struct {
	mu sync.Mutex
	m  map[string]*tools.Env // MCP session id → the agent session's Env
}

// withSession runs each tool call in its agent session's Env. Over stdio
// (one session per process) the server's own Env serves; over HTTP every
// MCP session gets its own audit session id and, in branch mode, its own
// branch, made on its first call.
func (s *Server) withSession(next mcpserver.ToolHandlerFunc) mcpserver.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		ctx = tools.WithResults(ctx, tools.ResultsOf(clientCapabilities(ctx)))
		if s.ids == nil {
			return next(ctx, req)
		}
		env, err := s.sessionEnv(ctx)
		if err != nil {
			return mcp.NewToolResultError(err.Error()), nil
		}
		return next(tools.WithEnv(ctx, env), req)
	}
}

func (s *Server) sessionEnv(ctx context.Context) (*tools.Env, error) {
	tok := tokenOf(ctx)
	var id string
	if mcpserver.IsModernRequest(ctx) {
		// 2026-07-28 has no protocol sessions: its requests belong to one
		// airlock session per bearer token, for the server's lifetime
		// (docs/architecture.md, Transports and sessions).
		if tok.index < 0 {
			return nil, errNoSession
		}
		id = fmt.Sprintf("token:%d", tok.index)
	} else {
		cs := mcpserver.ClientSessionFromContext(ctx)
		if cs == nil || !s.ids.owns(cs.SessionID(), tok.index) {
			return nil, errNoSession
		}
		id = cs.SessionID()
	}
	s.envs.mu.Lock()
	defer s.envs.mu.Unlock()
	if env, ok := s.envs.m[id]; ok {
		return env, nil
	}
	if s.envs.m == nil {
		s.envs.m = map[string]*tools.Env{}
	}
	env := s.env.ForSession(uuid.NewString())
	// Logs and audit rows name a token by a hash prefix, never its value.
	env.Actor = "agent (token " + tok.label + ")"
	s.envs.m[id] = env
	s.cfg.Logger.Info("agent session started", "session", env.Session, "transport", "http", "token", tok.label,
		"sessionless", mcpserver.IsModernRequest(ctx))
	return env, nil
}

// endSession releases an HTTP agent session's connections when its MCP
// session ends; its pending changes and branch stay for the reviewer.
func (s *Server) endSession(_ context.Context, cs mcpserver.ClientSession) {
	s.envs.mu.Lock()
	env, ok := s.envs.m[cs.SessionID()]
	delete(s.envs.m, cs.SessionID())
	s.envs.mu.Unlock()
	if ok {
		env.CloseBranch()
		s.cfg.Logger.Info("agent session ended", "session", env.Session, "transport", "http")
	}
}

// closeSessions releases every HTTP agent session (server shutdown).
func (s *Server) closeSessions() {
	s.envs.mu.Lock()
	envs := s.envs.m
	s.envs.m = nil
	s.envs.mu.Unlock()
	for _, env := range envs {
		env.CloseBranch()
	}
}

// clientCapabilities are the capabilities of the client a request comes
// from: declared in the request itself (2026-07-28 and later) or at
// initialize.
func clientCapabilities(ctx context.Context) *mcp.ClientCapabilities {
	if info := mcpserver.RequestProtocolInfoFromContext(ctx); info != nil && info.ClientCapabilities != nil {
		return info.ClientCapabilities
	}
	if cs, ok := mcpserver.ClientSessionFromContext(ctx).(mcpserver.SessionWithClientInfo); ok {
		caps := cs.GetClientCapabilities()
		return &caps
	}
	return nil
}

// listedTools drops the output schema of the tools whose rows a session
// takes as text: a strict client validates structuredContent against it
// and would fail a result that, by the session's own choice, has none.
func listedTools(ctx context.Context, list []mcp.Tool) []mcp.Tool {
	if !slices.ContainsFunc(list, func(t mcp.Tool) bool { return slices.Contains(tools.StructuredTools, t.Name) }) ||
		tools.ResultsOf(clientCapabilities(ctx)) != tools.ResultsText {
		return list
	}
	out := make([]mcp.Tool, len(list))
	for i, t := range list {
		if slices.Contains(tools.StructuredTools, t.Name) {
			t.OutputSchema = mcp.ToolOutputSchema{}
			t.RawOutputSchema = nil
		}
		out[i] = t
	}
	return out
}
