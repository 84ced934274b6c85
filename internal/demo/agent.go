package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// urlEnv is the variable the demo scope (and the reviewer's CLI) read the
// database URL from.
const urlEnv = "AIRLOCK_DATABASE_URL"

// callTimeout bounds one tool call or reviewer command.
const callTimeout = 30 * time.Second

// agent is the scripted agent's MCP connection to `airlock serve`.
type agent struct {
	c      *client.Client
	stderr *tail
}

// startAgent runs `binary serve --scope scope` with the database URL in its
// environment, as an MCP host would, and initializes the session.
func startAgent(ctx context.Context, binary, scope, url string) (*agent, error) {
	a := &agent{stderr: &tail{max: 8 << 10}}
	tr := transport.NewStdioWithOptions(binary, []string{urlEnv + "=" + url}, []string{"serve", "--scope", scope},
		// The server's stderr is its JSON audit log: worth keeping for an
		// error message, not worth showing on the tour.
		transport.WithCommandStderrWriter(a.stderr))
	// The server lives as long as ctx: an interrupt stops it.
	if err := tr.Start(ctx); err != nil {
		return nil, fmt.Errorf("start airlock serve: %w", err)
	}
	a.c = client.NewClient(tr)
	ictx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "airlock-demo", Version: "1"}
	if _, err := a.c.Initialize(ictx, init); err != nil {
		a.c.Close()
		return nil, fmt.Errorf("initialize the MCP session: %w%s", err, a.stderr.quote())
	}
	return a, nil
}

// arg is one tool argument; a slice of them keeps the printed order.
type arg struct {
	name  string
	value any
}

// call invokes a tool. A refusal is a result with IsError, not an error.
func (a *agent) call(ctx context.Context, tool string, args ...arg) (*mcp.CallToolResult, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name = tool
	if len(args) > 0 {
		m := make(map[string]any, len(args))
		for _, ar := range args {
			m[ar.name] = ar.value
		}
		req.Params.Arguments = m
	}
	res, err := a.c.CallTool(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w%s", tool, err, a.stderr.quote())
	}
	return res, nil
}

func (a *agent) close() error {
	return a.c.Close()
}

// resultText is a result's text content.
func resultText(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := mcp.AsTextContent(c); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// decodeStructured decodes a result's structuredContent into v.
func decodeStructured(res *mcp.CallToolResult, v any) error {
	b, err := json.Marshal(res.StructuredContent)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// reviewer runs `binary ARGS...` with the database URL in its environment,
// the way a human reviewer would in their own terminal, and returns what it
// printed.
func reviewer(ctx context.Context, binary, url string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), urlEnv+"="+url)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("airlock %s: %w\n%s%s", strings.Join(args, " "), err,
			stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

// quote returns the tail as an error suffix, or "" when it is empty.
func (t *tail) quote() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.TrimSpace(string(t.buf))
	if s == "" {
		return ""
	}
	return "\nserver log (last lines):\n" + s
}
