package demo

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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

// agent is the scripted agent's MCP connection to the airlock service.
type agent struct {
	c       *client.Client
	service *exec.Cmd
	stderr  *tail
	exited  chan error
}

// startAgent runs the airlock service, `binary serve --scope scope --http`
// on a free loopback port, with the service login's URL and the bearer
// token in files only this user can read (in dir), as the service's own OS
// user would hold them; then it connects to it as the agent does: over
// HTTP, with the token and nothing else.
func startAgent(ctx context.Context, binary, scope, dir, serviceURL, token string) (*agent, string, error) {
	urlFile, tokenFile := filepath.Join(dir, "service-url"), filepath.Join(dir, "agent-token")
	for file, content := range map[string]string{urlFile: serviceURL, tokenFile: token} {
		if err := os.WriteFile(file, []byte(content+"\n"), 0o600); err != nil {
			return nil, "", fmt.Errorf("write %s: %w", file, err)
		}
	}
	a := &agent{stderr: &tail{max: 8 << 10}, exited: make(chan error, 1)}
	// The service lives as long as ctx: an interrupt stops it.
	a.service = exec.CommandContext(ctx, binary, "serve", "--scope", scope, "--http", "127.0.0.1:0",
		"--database-url-file", urlFile, "--http-token-file", tokenFile)
	a.service.Env = os.Environ()
	a.service.Cancel = func() error { return a.service.Process.Signal(os.Interrupt) }
	a.service.WaitDelay = 10 * time.Second
	stderr, err := a.service.StderrPipe()
	if err != nil {
		return nil, "", err
	}
	if err := a.service.Start(); err != nil {
		return nil, "", fmt.Errorf("start airlock serve --http: %w", err)
	}
	found := make(chan string, 1)
	go func() {
		// The service's stderr is its JSON log: the line with its URL
		// says it is listening; the rest is kept for an error message.
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sent := false
		for sc.Scan() {
			line := sc.Bytes()
			a.stderr.Write(append(line, '\n'))
			var rec struct {
				URL string `json:"url"`
			}
			if !sent && json.Unmarshal(line, &rec) == nil && rec.URL != "" {
				found <- rec.URL
				sent = true
			}
		}
		a.exited <- a.service.Wait()
	}()
	var endpoint string
	select {
	case endpoint = <-found:
	case err := <-a.exited:
		return nil, "", fmt.Errorf("airlock serve --http stopped: %v%s", err, a.stderr.quote())
	case <-time.After(callTimeout):
		a.stop()
		return nil, "", fmt.Errorf("airlock serve --http did not start listening%s", a.stderr.quote())
	case <-ctx.Done():
		a.stop()
		return nil, "", ctx.Err()
	}
	c, err := client.NewStreamableHttpClient(endpoint, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
	if err != nil {
		a.stop()
		return nil, "", err
	}
	a.c = c
	ictx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if err := c.Start(ictx); err != nil {
		a.stop()
		return nil, "", fmt.Errorf("connect to the airlock service: %w", err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "airlock-demo", Version: "1"}
	if _, err := c.Initialize(ictx, init); err != nil {
		a.close()
		return nil, "", fmt.Errorf("initialize the MCP session: %w%s", err, a.stderr.quote())
	}
	return a, endpoint, nil
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

// close ends the MCP session and stops the service, which flushes its
// audit log as it exits.
func (a *agent) close() error {
	var err error
	if a.c != nil {
		err = a.c.Close()
	}
	if serr := a.stop(); err == nil {
		err = serr
	}
	return err
}

func (a *agent) stop() error {
	if a.service == nil || a.service.Process == nil {
		return nil
	}
	_ = a.service.Process.Signal(os.Interrupt)
	select {
	case err := <-a.exited:
		a.exited <- err
		return err
	case <-time.After(15 * time.Second):
		_ = a.service.Process.Kill()
		return errors.New("the airlock service did not stop within 15 s of SIGINT")
	}
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
