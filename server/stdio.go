package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/airlock-dev/airlock/internal/jsonrpc"
)

// MaxFrameBytes is the longest JSON-RPC message ServeStdio accepts, newline
// included. The largest legitimate message is a tool call carrying a scope's
// max_sql_bytes (at most 1 MiB) of SQL, which JSON escaping can make a few
// times longer; anything beyond this is refused unread.
const MaxFrameBytes = 8 << 20

// frameIDPrefix is how much of a refused frame is kept to find its id in.
const frameIDPrefix = 4 << 10

// ServeStdio serves MCP on in/out until in closes or ctx ends.
//
// The loop is airlock's own around mcp-go's MCPServer.HandleMessage,
// which does all of the protocol: mcp-go's StdioServer decodes every
// message five times before handing it on, starts a goroutine per line
// read, and encodes each answer twice before writing it, and those were
// a fifth of a point query's CPU (BENCHMARKS.md, Where a call's time
// goes). Here a message is read once, routed by its method, and tool
// calls run on as many workers as the pool has connections; their answers
// are written straight to out (writeMessage).
//
// A message longer than MaxFrameBytes is never buffered whole: it is
// skipped as it streams in and answered with an Invalid Request error that
// carries its id when the id comes before the large field (as clients
// write it), and a null id otherwise. Without the cap one line without a
// newline would grow the server's memory without bound.
func (s *Server) ServeStdio(ctx context.Context, in io.Reader, out io.Writer) error {
	w := &lineWriter{w: bufio.NewWriterSize(out, 64<<10)}
	session := newStdioSession()
	if err := s.mcp.RegisterSession(ctx, session); err != nil {
		return fmt.Errorf("serve stdio: register the session: %w", err)
	}
	defer s.mcp.UnregisterSession(context.Background(), session.SessionID())
	ctx = s.mcp.WithContext(ctx, session)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	frames := newFrameReader(in, MaxFrameBytes, func(id json.RawMessage, n int64) {
		s.cfg.Logger.Warn("mcp: message too large; refused", "bytes", n, "limit", MaxFrameBytes)
		w.writeRaw(oversizedResponse(id, n))
	})
	var wg sync.WaitGroup
	notified := make(chan struct{})
	go func() {
		defer close(notified)
		for {
			select {
			case n := <-session.notifications:
				w.write(s.cfg.Logger, n)
			case <-ctx.Done():
				return
			}
		}
	}()
	calls := make(chan []byte)
	workers := int(s.cfg.Pool.Config().MaxConns)
	for range max(workers, 1) {
		wg.Go(func() {
			for {
				select {
				case msg := <-calls:
					s.handleStdio(ctx, w, msg)
				case <-ctx.Done():
					return
				}
			}
		})
	}
	// The input is read on its own goroutine, so that the end of ctx (a
	// signal) ends the server even while the client sends nothing.
	read := make(chan error, 1)
	go func() {
		for {
			msg, err := frames.message()
			if len(msg) > 0 {
				var head struct {
					Method string `json:"method"`
				}
				// A message that is not JSON, or whose method is not a
				// string, goes to HandleMessage too, which answers it.
				_ = json.Unmarshal(msg, &head)
				if head.Method == string(mcp.MethodToolsCall) {
					select {
					case calls <- msg:
					case <-ctx.Done():
						read <- ctx.Err()
						return
					}
				} else {
					s.handleStdio(ctx, w, msg)
				}
			}
			if err != nil {
				read <- err
				return
			}
		}
	}()
	var err error
	select {
	case err = <-read:
	case <-ctx.Done():
	}
	// Calls still running are canceled; each is answered before return.
	cancel()
	wg.Wait()
	<-notified
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, context.Canceled) {
		return nil
	}
	return fmt.Errorf("serve stdio: %w", err)
}

// handleStdio answers one message. A handler that panics gets the
// request an Internal error answer, never a dead server.
func (s *Server) handleStdio(ctx context.Context, w *lineWriter, msg []byte) {
	var resp mcp.JSONRPCMessage
	func() {
		defer func() {
			if r := recover(); r != nil {
				s.cfg.Logger.Error("mcp: handler panicked", "panic", fmt.Sprint(r))
				resp = nil
				if id := frameID(msg); id != nil {
					w.writeRaw(jsonrpc.Error(id, mcp.INTERNAL_ERROR, "internal error"))
				}
			}
		}()
		resp = s.mcp.HandleMessage(ctx, msg)
	}()
	if resp != nil {
		w.write(s.cfg.Logger, resp)
	}
}

type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Warn("mcp", "msg", string(p))
	return len(p), nil
}

// lineWriter serializes writes to the client: answers come from several
// workers, the notification loop and the frame reader's refusals, and one
// message is one line that nothing may interleave with.
type lineWriter struct {
	mu sync.Mutex
	w  *bufio.Writer
}

func (l *lineWriter) write(log *slog.Logger, msg mcp.JSONRPCMessage) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := writeMessage(l.w, msg); err != nil {
		log.Warn("mcp: write a message", "err", err)
	}
}

func (l *lineWriter) writeRaw(msg []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.w.Write(msg)
	l.w.WriteByte('\n')
	_ = l.w.Flush()
}

// oversizedResponse is the JSON-RPC error for a refused frame of n bytes.
func oversizedResponse(id json.RawMessage, n int64) []byte {
	return jsonrpc.Error(id, -32600, fmt.Sprintf("message of %d bytes or more exceeds the %d-byte limit; it was not read", n, MaxFrameBytes))
}

// frameReader splits newline-delimited messages, holding each one
// until its end so that a message over max bytes can be dropped (and
// reported through refuse) before any of it reaches the decoder. A message
// is held as the chunks it arrived in, so holding one costs its size and no
// more: no buffer doubles as it grows.
type frameReader struct {
	r      *bufio.Reader
	max    int
	refuse func(id json.RawMessage, n int64)
	chunks [][]byte // the message being gathered
	size   int      // bytes in chunks
	ready  bool     // chunks hold a whole message (or the input's last bytes)
	err    error    // the error to return once chunks are handed out
}

func newFrameReader(r io.Reader, max int, refuse func(json.RawMessage, int64)) *frameReader {
	return &frameReader{r: bufio.NewReaderSize(r, 64<<10), max: max, refuse: refuse}
}

// message returns the next message, its newline included; after the last
// one, the input's error (io.EOF at its end). A last message without a
// newline comes with that error.
func (f *frameReader) message() ([]byte, error) {
	for {
		if f.err != nil && !f.ready {
			return nil, f.err
		}
		if !f.ready {
			f.next()
			continue
		}
		f.ready = false
		var msg []byte
		if len(f.chunks) == 1 {
			msg = f.chunks[0] // already a copy of the reader's buffer
		} else {
			msg = bytes.Join(f.chunks, nil)
		}
		f.chunks, f.size = nil, 0
		return msg, f.err
	}
}

// next gathers one message into f.chunks, or refuses it, or records the
// reader's error.
func (f *frameReader) next() {
	f.chunks, f.size = nil, 0
	for {
		chunk, err := f.r.ReadSlice('\n')
		if f.size+len(chunk) > f.max {
			f.skip(chunk, err)
			return
		}
		if len(chunk) > 0 {
			// ReadSlice's bytes are only valid until the next read.
			f.chunks = append(f.chunks, bytes.Clone(chunk))
			f.size += len(chunk)
		}
		switch {
		case err == nil:
			f.ready = true
			return
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			// A last message without a newline goes through as mcp-go
			// would see it; the error follows it.
			f.ready, f.err = true, err
			return
		}
	}
}

// skip discards the rest of an oversized message (f.chunks, then last,
// which came with err) and refuses it.
func (f *frameReader) skip(last []byte, err error) {
	var prefix []byte
	for _, c := range append(f.chunks, last) {
		if len(prefix) >= frameIDPrefix {
			break
		}
		prefix = append(prefix, c...)
	}
	n := int64(f.size + len(last))
	f.chunks, f.size = nil, 0
	id := frameID(prefix)
	for errors.Is(err, bufio.ErrBufferFull) {
		var chunk []byte
		chunk, err = f.r.ReadSlice('\n')
		n += int64(len(chunk))
	}
	f.refuse(id, n)
	if err != nil {
		f.err = err
	}
}

// frameID returns the id of the JSON-RPC message that prefix starts, if it
// is a string or number found among the top-level members before anything
// that does not fit in the first frameIDPrefix bytes.
func frameID(prefix []byte) json.RawMessage {
	if len(prefix) > frameIDPrefix {
		prefix = prefix[:frameIDPrefix]
	}
	dec := json.NewDecoder(bytes.NewReader(prefix))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return nil
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil
		}
		if key != "id" {
			continue
		}
		switch v[0] {
		case '"', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			return v
		}
		return nil
	}
	return nil
}
