package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// callTimeout bounds one tool call; SELECT * under the largest caps is the
// slowest.
const callTimeout = 2 * time.Minute

// serveProc is one `airlock serve` process and the MCP client session on
// its stdio. The driver spawns the process itself (rather than letting the
// transport do it) to time the exec, count the bytes the server writes and
// read its peak RSS.
type serveProc struct {
	cmd     *exec.Cmd
	c       *client.Client
	out     *countingReader
	stderr  *tail
	started time.Time // just before exec
	// initialized is when the initialize answer arrived.
	initialized time.Time
}

// startServe execs `airlock serve --scope scope` as the login role and
// completes the MCP initialize handshake.
func startServe(ctx context.Context, e *benchEnv, scope string) (*serveProc, error) {
	p := &serveProc{stderr: &tail{max: 16 << 10}}
	p.cmd = exec.Command(e.bin, "serve", "--scope", scope)
	p.cmd.Env = append(os.Environ(), urlEnv+"="+e.agentURL)
	// The server's stderr is its JSON audit log, a line per call.
	p.cmd.Stderr = p.stderr
	stdin, err := p.cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p.out = &countingReader{r: stdout}
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start airlock serve: %w", err)
	}
	tr := transport.NewIO(p.out, stdin, nil)
	if err := tr.Start(context.Background()); err != nil {
		p.kill()
		return nil, err
	}
	p.c = client.NewClient(tr)
	ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "airlock-bench", Version: "1"}
	if _, err := p.c.Initialize(ictx, init); err != nil {
		p.close()
		return nil, fmt.Errorf("initialize: %w\n%s", err, p.stderr)
	}
	p.initialized = time.Now()
	return p, nil
}

// query calls query_readonly and fails on a refusal: every call the driver
// makes is one the scope allows.
func (p *serveProc) query(ctx context.Context, sql string, params ...any) (*mcp.CallToolResult, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name = "query_readonly"
	args := map[string]any{"sql": sql}
	if len(params) > 0 {
		args["params"] = params
	}
	req.Params.Arguments = args
	res, err := p.c.CallTool(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("query_readonly: %w", err)
	}
	if res.IsError {
		return nil, fmt.Errorf("query_readonly refused or failed: %s", resultText(res))
	}
	return res, nil
}

// peakRSS is the server's peak resident set so far (VmHWM), in KiB.
func (p *serveProc) peakRSS() (int64, error) {
	return procStatusKiB(p.cmd.Process.Pid, "VmHWM:")
}

// close ends the session (EOF on the server's stdin), waits for the
// process and returns its peak RSS from the kernel's rusage, in KiB.
func (p *serveProc) close() (maxRSSKiB int64) {
	if p.c != nil {
		p.c.Close() // closes the server's stdin
	}
	done := make(chan struct{})
	go func() {
		_ = p.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		p.kill()
		<-done
	}
	if ru, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss // KiB on Linux
	}
	return 0
}

func (p *serveProc) kill() {
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
	}
}

// countingReader counts the bytes the server writes to its stdout, and
// notes when the first of them arrived after mark: the server's side of a
// call ends there, the client's decoding starts.
type countingReader struct {
	r     io.Reader
	n     atomic.Int64
	first atomic.Int64 // unix nanoseconds; 0 until a read after mark
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	if n > 0 {
		c.first.CompareAndSwap(0, time.Now().UnixNano())
	}
	c.n.Add(int64(n))
	return n, err
}

// mark starts a new call: it returns the byte count so far and forgets
// when the last answer started.
func (c *countingReader) mark() int64 {
	c.first.Store(0)
	return c.n.Load()
}

// firstByte is when the first byte after mark arrived.
func (c *countingReader) firstByte() time.Time { return time.Unix(0, c.first.Load()) }

// procStatusKiB reads one "Name:   N kB" line of /proc/PID/status.
func procStatusKiB(pid int, field string) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == field {
			return strconv.ParseInt(f[1], 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

func resultText(res *mcp.CallToolResult) string {
	var sb strings.Builder
	for _, c := range res.Content {
		if tc, ok := mcp.AsTextContent(c); ok {
			sb.WriteString(tc.Text)
		}
	}
	return sb.String()
}

// queryOutcome is the part of query_readonly's structuredContent the report
// quotes.
type queryOutcome struct {
	RowCount        int     `json:"row_count"`
	Truncated       bool    `json:"truncated"`
	TruncatedReason string  `json:"truncated_reason"`
	ElapsedMS       float64 `json:"elapsed_ms"`
}

// outcome reads a query_readonly answer: from structuredContent when the
// session asked for it, else from the text airlock sends by default (the
// summary line, then the rows between two fence lines, the first of them
// the column names).
func outcome(res *mcp.CallToolResult) (queryOutcome, error) {
	var o queryOutcome
	if res.StructuredContent != nil {
		b, err := json.Marshal(res.StructuredContent)
		if err != nil {
			return o, err
		}
		return o, json.Unmarshal(b, &o)
	}
	text := resultText(res)
	head, body, ok := strings.Cut(text, "\n")
	if !ok {
		return o, fmt.Errorf("no rows in the answer: %.200s", text)
	}
	if _, after, ok := strings.Cut(head, "Truncated: "); ok {
		o.Truncated, o.TruncatedReason = true, after
	}
	lines := strings.Count(body, "\n") // the open fence, the columns, the rows
	o.RowCount = lines - 2
	if ms, _, ok := strings.Cut(head, " ms."); ok {
		if i := strings.LastIndexByte(ms, ' '); i >= 0 {
			o.ElapsedMS, _ = strconv.ParseFloat(ms[i+1:], 64)
		}
	}
	return o, nil
}
