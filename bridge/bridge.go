package bridge

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/airlock-dev/airlock/internal/jsonrpc"
)

// MaxFrameBytes is the longest message the bridge reads from its client,
// as airlock serve's stdio accepts.
const MaxFrameBytes = 8 << 20

// Config says where the service is and how to reach it.
type Config struct {
	// URL is the service's MCP endpoint (https://host:port/mcp), or
	// unix:PATH for a service listening on a Unix socket.
	URL string
	// Token is the agent's bearer token.
	Token string
	// Logger receives the bridge's own log (stderr; stdout is the
	// protocol's).
	Logger *slog.Logger
}

// Dial returns the transport to the service. It sends nothing yet.
func Dial(cfg Config) (*transport.StreamableHTTP, error) {
	if strings.TrimSpace(cfg.Token) == "" {
		return nil, errors.New("no bearer token: set AIRLOCK_TOKEN, or pass --token-file FILE (the token the service's admin gave this agent)")
	}
	endpoint := cfg.URL
	opts := []transport.StreamableHTTPCOption{
		transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + strings.TrimSpace(cfg.Token)}),
	}
	if path, ok := strings.CutPrefix(cfg.URL, "unix:"); ok {
		// HTTP over the socket; the host in the URL is only a name.
		endpoint = "http://localhost/mcp"
		dialer := &net.Dialer{Timeout: 10 * time.Second}
		opts = append(opts, transport.WithHTTPBasicClient(&http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return dialer.DialContext(ctx, "unix", path)
			},
		}}))
	} else if !strings.HasPrefix(endpoint, "http://") && !strings.HasPrefix(endpoint, "https://") {
		return nil, fmt.Errorf("%q is not an airlock service URL: want https://host:port/mcp (or unix:/path/to/socket)", cfg.URL)
	}
	t, err := transport.NewStreamableHTTP(endpoint, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", cfg.URL, err)
	}
	return t, nil
}

// message is what the bridge needs to know of a JSON-RPC message.
type message struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}

// Serve passes messages between the stdio client on in/out and the
// service through t until in closes or ctx ends. Every request gets an
// answer: the service's, or a JSON-RPC error saying why there is none.
func Serve(ctx context.Context, cfg Config, t *transport.StreamableHTTP, in io.Reader, out io.Writer) error {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	w := &writer{w: out}
	t.SetNotificationHandler(func(n mcp.JSONRPCNotification) {
		// Progress and the like, on the way to the client.
		if b, err := json.Marshal(n); err == nil {
			w.write(b)
		}
	})
	if err := t.Start(ctx); err != nil {
		return fmt.Errorf("start the connection to %s: %w", cfg.URL, err)
	}
	defer t.Close()

	var wg sync.WaitGroup
	defer wg.Wait()
	r := bufio.NewReaderSize(in, 64<<10)
	for {
		line, err := readLine(r)
		if len(bytes.TrimSpace(line)) > 0 {
			var m message
			if jerr := json.Unmarshal(line, &m); jerr != nil {
				w.error(nil, mcp.PARSE_ERROR, "not a JSON-RPC message: "+jerr.Error())
			} else {
				wg.Add(1)
				go func() {
					defer wg.Done()
					forward(ctx, cfg, t, w, m, log)
				}()
			}
		}
		switch {
		case errors.Is(err, errTooLong):
			w.error(nil, mcp.INVALID_REQUEST, fmt.Sprintf("message exceeds %d bytes; it was not read", MaxFrameBytes))
		case err != nil:
			if errors.Is(err, io.EOF) || ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read from the client: %w", err)
		}
	}
}

// forward sends one message to the service and writes its answer.
func forward(ctx context.Context, cfg Config, t *transport.StreamableHTTP, w *writer, m message, log *slog.Logger) {
	hasID := len(m.ID) > 0 && string(m.ID) != "null"
	switch {
	case m.Method == "":
		// A client's answer to a request of the server's: airlock's
		// service asks nothing of its clients.
		return
	case !hasID:
		n := mcp.JSONRPCNotification{JSONRPC: mcp.JSONRPC_VERSION, Notification: mcp.Notification{Method: m.Method}}
		if len(m.Params) > 0 {
			var p map[string]any
			if json.Unmarshal(m.Params, &p) == nil {
				if meta, ok := p["_meta"].(map[string]any); ok {
					n.Params.Meta = meta
					delete(p, "_meta")
				}
				n.Params.AdditionalFields = p
			}
		}
		if err := t.SendNotification(ctx, n); err != nil {
			log.Warn("forward a notification", "method", m.Method, "err", err)
		}
		return
	}
	id, err := requestID(m.ID)
	if err != nil {
		w.error(m.ID, mcp.INVALID_REQUEST, err.Error())
		return
	}
	req := transport.JSONRPCRequest{JSONRPC: mcp.JSONRPC_VERSION, ID: id, Method: m.Method}
	if len(m.Params) > 0 {
		req.Params = m.Params
	}
	resp, err := t.SendRequest(ctx, req)
	if err != nil {
		var auth *transport.AuthorizationRequiredError
		msg := fmt.Sprintf("the airlock service at %s did not answer: %v", cfg.URL, err)
		if errors.As(err, &auth) {
			msg = fmt.Sprintf("the airlock service at %s refused the bearer token: check AIRLOCK_TOKEN or --token-file", cfg.URL)
		}
		w.error(m.ID, mcp.INTERNAL_ERROR, msg)
		return
	}
	if m.Method == string(mcp.MethodInitialize) && resp.Error == nil {
		// Later requests carry the revision the service chose.
		var init struct {
			ProtocolVersion string `json:"protocolVersion"`
		}
		if json.Unmarshal(resp.Result, &init) == nil && init.ProtocolVersion != "" {
			t.SetProtocolVersion(init.ProtocolVersion)
		}
	}
	out := struct {
		JSONRPC string                   `json:"jsonrpc"`
		ID      json.RawMessage          `json:"id"`
		Result  json.RawMessage          `json:"result,omitempty"`
		Error   *mcp.JSONRPCErrorDetails `json:"error,omitempty"`
	}{JSONRPC: mcp.JSONRPC_VERSION, ID: m.ID, Result: resp.Result, Error: resp.Error}
	if out.Result == nil && out.Error == nil {
		out.Result = json.RawMessage("{}")
	}
	b, err := json.Marshal(out)
	if err != nil {
		w.error(m.ID, mcp.INTERNAL_ERROR, "the service's answer could not be encoded: "+err.Error())
		return
	}
	w.write(b)
}

// requestID turns a JSON-RPC id as written into mcp-go's: a number or a
// string.
func requestID(raw json.RawMessage) (mcp.RequestId, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return mcp.RequestId{}, fmt.Errorf("invalid id: %w", err)
	}
	switch v := v.(type) {
	case string:
		return mcp.NewRequestId(v), nil
	case json.Number:
		if n, err := v.Int64(); err == nil {
			return mcp.NewRequestId(n), nil
		}
	}
	return mcp.RequestId{}, fmt.Errorf("invalid id %s: want a string or an integer", raw)
}

var errTooLong = errors.New("message too long")

// readLine reads one newline-terminated message, skipping (and reporting)
// one longer than MaxFrameBytes without holding it.
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(line)+len(chunk) > MaxFrameBytes {
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = r.ReadSlice('\n')
			}
			if err != nil && !errors.Is(err, io.EOF) {
				return nil, err
			}
			return nil, errTooLong
		}
		line = append(line, chunk...)
		if !errors.Is(err, bufio.ErrBufferFull) {
			return line, err
		}
	}
}

// writer writes whole messages, one a line, from any goroutine.
type writer struct {
	mu sync.Mutex
	w  io.Writer
}

func (w *writer) write(b []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, _ = w.w.Write(append(b, '\n'))
}

func (w *writer) error(id json.RawMessage, code int, msg string) {
	w.write(jsonrpc.Error(id, code, msg))
}
