package server

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"

	mcpserver "github.com/mark3labs/mcp-go/server"
)

// ServeStdio serves MCP on in/out until in closes or ctx ends.
func (s *Server) ServeStdio(ctx context.Context, in io.Reader, out io.Writer) error {
	stdio := mcpserver.NewStdioServer(s.mcp)
	stdio.SetErrorLogger(log.New(slogWriter{s.cfg.Logger}, "", 0))
	if err := stdio.Listen(ctx, in, out); err != nil && ctx.Err() == nil {
		return fmt.Errorf("serve stdio: %w", err)
	}
	return nil
}

type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Warn("mcp", "msg", string(p))
	return len(p), nil
}
