package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"

	"github.com/airlock-dev/airlock/internal/safetext"
)

// reviewLoggers returns the loggers of a reviewer's command: the store's,
// and the one the audit log copies its events to. With --log-json both
// write JSON lines at info level, as serve does. By default the reviewer
// reads plain output: the audit events (info) stay off the terminal, their
// rows still go to airlock.audit_log, and warnings and errors are one plain
// line each.
func reviewLoggers(name string, stderr io.Writer, logJSON bool) (store, audit *slog.Logger) {
	if logJSON {
		l := newLogger(stderr)
		return l, l
	}
	out := &humanOut{w: stderr, prefix: "airlock " + name + ": "}
	return slog.New(&humanHandler{out: out}), slog.New(&humanHandler{out: out, hold: true})
}

// humanOut is the stderr that the handlers of one command share.
type humanOut struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	held   []slog.Record
}

// maxHeld bounds the records a holding handler keeps; a reviewer's command
// logs a handful.
const maxHeld = 1024

// humanHandler prints warnings and errors as one plain line each and drops
// the rest. With hold (the audit log's handler) it keeps what it drops and,
// after a warning or error, prints it as JSON lines: the audit log warns or
// errs exactly when an event may not have reached airlock.audit_log, and its
// stderr copy is then the only one, which must not be lost.
type humanHandler struct {
	out   *humanOut
	hold  bool
	attrs []slog.Attr
	group string
}

func (h *humanHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn || (h.hold && l >= slog.LevelInfo)
}

func (h *humanHandler) Handle(ctx context.Context, r slog.Record) error {
	h.out.mu.Lock()
	defer h.out.mu.Unlock()
	if r.Level < slog.LevelWarn {
		if h.hold && len(h.out.held) < maxHeld {
			r = r.Clone()
			r.AddAttrs(h.attrs...)
			h.out.held = append(h.out.held, r)
		}
		return nil
	}
	if _, err := io.WriteString(h.out.w, h.line(r)); err != nil {
		return err
	}
	if !h.hold || len(h.out.held) == 0 {
		return nil
	}
	fmt.Fprintf(h.out.w, "%sthe audit events may be missing from airlock.audit_log; here they are as JSON lines:\n", h.out.prefix)
	js := slog.NewJSONHandler(h.out.w, nil)
	for _, held := range h.out.held {
		if err := js.Handle(ctx, held); err != nil {
			return err
		}
	}
	h.out.held = nil
	return nil
}

// line renders r as "airlock NAME: warning: message: err (key=value, …)",
// on one line and safe for a terminal (values may carry an agent's text).
func (h *humanHandler) line(r slog.Record) string {
	level := "warning"
	if r.Level >= slog.LevelError {
		level = "error"
	}
	var errText string
	var kv []string
	add := func(a slog.Attr) {
		a.Value = a.Value.Resolve()
		switch {
		case a.Equal(slog.Attr{}):
		case a.Key == "err":
			errText = a.Value.String()
		default:
			kv = append(kv, a.Key+"="+a.Value.String())
		}
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(func(a slog.Attr) bool { add(h.grouped(a)); return true })
	msg := r.Message
	if errText != "" {
		msg += ": " + errText
	}
	if len(kv) > 0 {
		msg += " (" + strings.Join(kv, ", ") + ")"
	}
	return h.out.prefix + level + ": " + oneLine(msg) + "\n"
}

// oneLine renders a log line's text on one line with nothing hidden in it
// (see render.go): its values may carry an agent's text.
func oneLine(s string) string { return safetext.Line(s) }

// grouped names a's key after the handler's group: these lines are flat.
func (h *humanHandler) grouped(a slog.Attr) slog.Attr {
	if h.group != "" {
		a.Key = h.group + "." + a.Key
	}
	return a
}

func (h *humanHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append([]slog.Attr(nil), h.attrs...)
	for _, a := range as {
		c.attrs = append(c.attrs, h.grouped(a))
	}
	return &c
}

func (h *humanHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	if c.group != "" {
		name = c.group + "." + name
	}
	c.group = name
	return &c
}
