package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/airlock-dev/airlock/internal/pgtest"
)

// wire is a raw JSON-RPC connection to an `airlock serve` process: the test
// writes lines by hand, and answers are matched to requests by their id.
// Unlike the mcp-go client it owns the process, so a test can signal it
// and read its exit status.
type wire struct {
	t     testing.TB
	cmd   *exec.Cmd
	stdin io.WriteCloser

	wmu    sync.Mutex // one line at a time on stdin
	nextID atomic.Int64

	mu      sync.Mutex
	waiting map[string]chan map[string]any // by the id's JSON text
	early   map[string]map[string]any      // answers nobody waited for yet
	nullIDs []map[string]any               // answers with a null id
	answers int

	exited  chan struct{}
	waitErr error
}

// applyScope runs `airlock scope apply` for scope (a file in
// testdata/scopes or an absolute path) and returns the scope's path.
func applyScope(t testing.TB, url, scope string) string {
	t.Helper()
	if !filepath.IsAbs(scope) {
		scope = pgtest.Testdata("scopes", scope)
	}
	apply := exec.Command(binary, "scope", "apply", "--scope", scope)
	apply.Env = append(os.Environ(), "AIRLOCK_DATABASE_URL="+url)
	if out, err := apply.CombinedOutput(); err != nil {
		t.Fatalf("scope apply: %v\n%s", err, out)
	}
	return scope
}

// startWire starts `airlock serve` on an applied scope (see applyScope) and
// initializes the MCP session. The process is killed, if still running,
// when the test ends.
func startWire(t testing.TB, url, scopePath string) *wire {
	t.Helper()
	cmd := exec.Command(binary, "serve", "--scope", scopePath, "--allow-owner", "--local-writes")
	cmd.Env = append(os.Environ(), "AIRLOCK_DATABASE_URL="+url)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &wire{t: t, cmd: cmd, stdin: stdin, waiting: map[string]chan map[string]any{},
		early: map[string]map[string]any{}, exited: make(chan struct{})}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		w.readLoop(stdout)
	}()
	go func() {
		<-readDone
		w.waitErr = cmd.Wait()
		close(w.exited)
	}()
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-w.exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-w.exited
		}
		if t.Failed() {
			t.Logf("airlock stderr:\n%s", stderr.String())
		}
	})
	// Rows as structuredContent too, which the checks below read.
	init := w.request("initialize", map[string]any{"protocolVersion": "2025-06-18",
		"capabilities": map[string]any{"experimental": map[string]any{"airlock/results": map[string]any{"rows": "both"}}},
		"clientInfo":   map[string]any{"name": "fault", "version": "1"}})
	if m := w.await(init, 30*time.Second); m == nil || m["result"] == nil {
		t.Fatalf("initialize: %v", m)
	}
	w.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	return w
}

func (w *wire) readLoop(stdout io.Reader) {
	r := bufio.NewReaderSize(stdout, 1<<20)
	for {
		line, err := r.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			w.deliver(line)
		}
		if err != nil {
			return
		}
	}
}

func (w *wire) deliver(line []byte) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		m = map[string]any{"unparsable": string(line)}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.answers++
	raw, ok := m["id"]
	if !ok || raw == nil {
		w.nullIDs = append(w.nullIDs, m)
		return
	}
	key := idKey(raw)
	if ch, ok := w.waiting[key]; ok {
		delete(w.waiting, key)
		ch <- m
		return
	}
	w.early[key] = m
}

func idKey(id any) string {
	b, _ := json.Marshal(id)
	return string(b)
}

// send writes one line (a newline is added).
func (w *wire) send(line string) {
	w.t.Helper()
	w.wmu.Lock()
	defer w.wmu.Unlock()
	if _, err := io.WriteString(w.stdin, line+"\n"); err != nil {
		w.t.Errorf("write to airlock: %v", err)
	}
}

// expect registers interest in the answer to id before the request is sent.
func (w *wire) expect(id any) chan map[string]any {
	ch := make(chan map[string]any, 1)
	key := idKey(id)
	w.mu.Lock()
	defer w.mu.Unlock()
	if m, ok := w.early[key]; ok {
		delete(w.early, key)
		ch <- m
		return ch
	}
	w.waiting[key] = ch
	return ch
}

// request sends a request with a fresh numeric id and returns the channel
// its answer arrives on.
func (w *wire) request(method string, params any) chan map[string]any {
	w.t.Helper()
	id := w.nextID.Add(1) + 1_000_000
	ch := w.expect(json.Number(strconv.FormatInt(id, 10)))
	msg, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
	w.send(string(msg))
	return ch
}

// callTool sends a tools/call request.
func (w *wire) callTool(tool string, args map[string]any) chan map[string]any {
	w.t.Helper()
	return w.request("tools/call", map[string]any{"name": tool, "arguments": args})
}

// await waits up to d for an answer; nil means none came.
func (w *wire) await(ch chan map[string]any, d time.Duration) map[string]any {
	select {
	case m := <-ch:
		return m
	case <-time.After(d):
		return nil
	case <-w.exited:
		select {
		case m := <-ch:
			return m
		default:
			return nil
		}
	}
}

// toolCall calls a tool and fails the test unless an answer with a result
// comes within d. It returns the result object.
func (w *wire) toolCall(tool string, args map[string]any, d time.Duration) map[string]any {
	w.t.Helper()
	t0 := time.Now()
	m := w.await(w.callTool(tool, args), d)
	if m == nil {
		w.t.Fatalf("%s %v: no answer within %v", tool, args, d)
	}
	res, _ := m["result"].(map[string]any)
	if res == nil {
		w.t.Fatalf("%s: %v (after %v)", tool, m, time.Since(t0))
	}
	return res
}

func (w *wire) nullIDAnswers() []map[string]any {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]map[string]any(nil), w.nullIDs...)
}

// signal sends sig to the server process.
func (w *wire) signal(sig syscall.Signal) {
	w.t.Helper()
	if err := w.cmd.Process.Signal(sig); err != nil {
		w.t.Fatalf("signal %v: %v", sig, err)
	}
}

// exit waits up to d for the process to end and returns its exit code
// (-1 for a signal); ok is false if it is still running.
func (w *wire) exit(d time.Duration) (code int, ok bool) {
	select {
	case <-w.exited:
		return w.cmd.ProcessState.ExitCode(), true
	case <-time.After(d):
		return 0, false
	}
}

// structured returns a tool result's structuredContent as a map.
func structured(res map[string]any) map[string]any {
	m, _ := res["structuredContent"].(map[string]any)
	return m
}

// errorCode returns the code of a failed tool result, "" for success.
func errorCode(res map[string]any) string {
	if res["isError"] != true {
		return ""
	}
	meta, _ := res["_meta"].(map[string]any)
	payload, _ := meta["airlock/error"].(map[string]any)
	code, _ := payload["code"].(string)
	if code == "" {
		return "?"
	}
	return code
}

// lockedBuffer is a bytes.Buffer safe to write from the process's stderr
// copier while a test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// airlockBackends counts the server connections of airlock processes in
// the database at url, and how many of them are inside a transaction.
func airlockBackends(t testing.TB, conn *pgx.Conn) (total, inTx int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := conn.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE xact_start IS NOT NULL)
		FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'airlock'`).Scan(&total, &inTx)
	if err != nil {
		t.Fatal(err)
	}
	return total, inTx
}

// eventually polls cond every 50 ms for up to d and reports whether it
// became true.
func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// must fails the test on err.
func must(t testing.TB, err error, what string, args ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", fmt.Sprintf(what, args...), err)
	}
}
