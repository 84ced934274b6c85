package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"sync"

	mcpserver "github.com/mark3labs/mcp-go/server"

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
// A message longer than MaxFrameBytes is never buffered whole: it is
// skipped as it streams in and answered with an Invalid Request error that
// carries its id when the id comes before the large field (as clients
// write it), and a null id otherwise. Without the cap one line without a
// newline would grow the server's memory without bound.
func (s *Server) ServeStdio(ctx context.Context, in io.Reader, out io.Writer) error {
	w := &lineWriter{w: out}
	stdio := mcpserver.NewStdioServer(s.mcp)
	stdio.SetErrorLogger(log.New(slogWriter{s.cfg.Logger}, "", 0))
	// As many tool calls run at once as the pool has connections (mcp-go's
	// default is 5); the rest wait in its queue.
	mcpserver.WithWorkerPoolSize(int(s.cfg.Pool.Config().MaxConns))(stdio)
	frames := newFrameReader(in, MaxFrameBytes, func(id json.RawMessage, n int64) {
		s.cfg.Logger.Warn("mcp: message too large; refused", "bytes", n, "limit", MaxFrameBytes)
		if err := w.writeMessage(oversizedResponse(id, n)); err != nil {
			s.cfg.Logger.Warn("mcp: write response", "err", err)
		}
	})
	if err := stdio.Listen(ctx, frames, w); err != nil && ctx.Err() == nil {
		return fmt.Errorf("serve stdio: %w", err)
	}
	return nil
}

type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Warn("mcp", "msg", string(p))
	return len(p), nil
}

// lineWriter serializes writes to the client. mcp-go writes each message
// with one Write call under its own lock; the frame reader's refusals are
// written from another goroutine and must not interleave with them.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lineWriter) writeMessage(msg []byte) error {
	_, err := l.Write(append(msg, '\n'))
	return err
}

// oversizedResponse is the JSON-RPC error for a refused frame of n bytes.
func oversizedResponse(id json.RawMessage, n int64) []byte {
	return jsonrpc.Error(id, -32600, fmt.Sprintf("message of %d bytes or more exceeds the %d-byte limit; it was not read", n, MaxFrameBytes))
}

// frameReader passes newline-delimited messages through, holding each one
// until its end so that a message over max bytes can be dropped (and
// reported through refuse) before any of it reaches the decoder. A message
// is held as the chunks it arrived in, so holding one costs its size and no
// more: no buffer doubles as it grows.
type frameReader struct {
	r      *bufio.Reader
	max    int
	refuse func(id json.RawMessage, n int64)
	chunks [][]byte // the message being gathered, then handed out
	size   int      // bytes in chunks
	ready  bool     // chunks hold a whole message (or the input's last bytes)
	err    error    // the error to return once chunks are handed out
}

func newFrameReader(r io.Reader, max int, refuse func(json.RawMessage, int64)) *frameReader {
	return &frameReader{r: bufio.NewReaderSize(r, 64<<10), max: max, refuse: refuse}
}

func (f *frameReader) Read(p []byte) (int, error) {
	for !f.ready || len(f.chunks) == 0 {
		if f.ready {
			f.ready = false
			f.size = 0
		}
		if f.err != nil {
			return 0, f.err
		}
		f.next()
	}
	n := copy(p, f.chunks[0])
	if f.chunks[0] = f.chunks[0][n:]; len(f.chunks[0]) == 0 {
		f.chunks[0] = nil
		f.chunks = f.chunks[1:]
	}
	return n, nil
}

// next gathers one message into f.chunks, or refuses it, or records the
// reader's error.
func (f *frameReader) next() {
	f.chunks, f.size = f.chunks[:0], 0
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
