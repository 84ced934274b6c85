package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/airlock-dev/airlock/audit"
	"github.com/airlock-dev/airlock/migrate"
	"github.com/airlock-dev/airlock/scopes"
	"github.com/airlock-dev/airlock/sqlguard"
)

// Tool is one agent-facing tool: its MCP definition and its handler.
type Tool interface {
	Definition() mcp.Tool
	Handle(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error)
}

// Env is what every tool shares within one server.
type Env struct {
	Pool    *pgxpool.Pool
	Scope   *scopes.Scope
	Catalog *Catalog
	Audit   *audit.Log
	Log     *slog.Logger
	// Session identifies this agent session in the audit log.
	Session string
	// Actor names the agent in the audit log ("agent" when empty); over
	// HTTP it carries the token the session authenticated with.
	Actor string
	// ReadRole and WriteRole are the scope's database roles, assumed with
	// SET LOCAL ROLE right after BEGIN so that PostgreSQL's own privileges
	// bound what a statement can do even if the guard missed something.
	// Empty means no SET ROLE (unit tests of this package only).
	ReadRole, WriteRole string
	// Branching, when set (write.mode "branch"), gives this session its
	// own branch database; see Target.
	Branching *Branching
	// ReadOnly is set for an agent-side server (stdio, the agent login): it
	// lists no write tool, and refusals that point to the write tools say
	// where they are instead.
	ReadOnly bool
	// UnsafeSkipGuard hands agent SQL to the database without the parser
	// guard. It exists only so that tests can prove the other layers hold
	// alone; no flag, scope field or environment variable sets it.
	UnsafeSkipGuard bool
	// noCatalogChecks skips the write checks that look objects up in the
	// database (CheckStored for a branch merge).
	noCatalogChecks bool
}

type envKey struct{}

// WithEnv returns a context carrying env, the Env of the agent session a
// call belongs to. A transport that serves several agent sessions over one
// tool set (Streamable HTTP) puts each call's session Env in its context.
func WithEnv(ctx context.Context, env *Env) context.Context {
	return context.WithValue(ctx, envKey{}, env)
}

// For returns the Env of the agent session ctx belongs to: the one
// WithEnv put there, or e itself (stdio serves one session).
func (e *Env) For(ctx context.Context) *Env {
	if s, ok := ctx.Value(envKey{}).(*Env); ok {
		return s
	}
	return e
}

// ForSession returns an Env for another agent session over the same
// database, scope, catalog and audit log: only the session's audit id and,
// in branch mode, its branch are its own.
func (e *Env) ForSession(id string) *Env {
	s := *e
	s.Session = id
	if e.Branching != nil {
		s.Branching = e.Branching.forSession()
	}
	return &s
}

// auditSQLLimit bounds the SQL text kept in an audit row.
const auditSQLLimit = 64 << 10

func (e *Env) record(ev audit.Event) {
	ev.Session, ev.Scope = e.Session, e.Scope.Name
	if ev.Actor == "" {
		ev.Actor = e.Actor
	}
	if ev.Actor == "" {
		ev.Actor = "agent"
	}
	if len(ev.SQL) > auditSQLLimit {
		ev.SQL, _ = truncateString(ev.SQL, auditSQLLimit)
		ev.SQL += " …[truncated]"
	}
	if !utf8.ValidString(ev.SQL) {
		ev.SQL = fmt.Sprintf("[invalid UTF-8, %d bytes]", len(ev.SQL))
	}
	e.Audit.Record(ev)
}

// ErrorPayload is the machine-readable form of a refused or failed call:
// a stable code, the reason, and what is allowed instead.
type ErrorPayload struct {
	Code   string `json:"code"`
	Reason string `json:"reason"`
	Hint   string `json:"hint,omitempty"`
}

// ErrorMetaKey is the _meta key under which a refused or failed call
// carries its ErrorPayload.
//
// A refusal is an isError result with text content and no
// structuredContent: strict clients (the official TypeScript SDK among
// them) validate any structuredContent against the tool's output schema,
// which describes success, and would turn a refusal into a protocol error
// the agent never reads. _meta is outside that validation
// (docs/architecture.md, "Results").
const ErrorMetaKey = "airlock/error"

// failureResult renders a refusal or a failure: the text an agent reads,
// and the payload in _meta.
func failureResult(p ErrorPayload, text string) *mcp.CallToolResult {
	res := &mcp.CallToolResult{Content: []mcp.Content{mcp.NewTextContent(text)}, IsError: true}
	res.Meta = &mcp.Meta{AdditionalFields: map[string]any{ErrorMetaKey: p}}
	return res
}

// ErrorOf returns the payload of a refused or failed call, or nil for a
// successful one.
func ErrorOf(res *mcp.CallToolResult) *ErrorPayload {
	if res == nil || !res.IsError || res.Meta == nil {
		return nil
	}
	switch v := res.Meta.AdditionalFields[ErrorMetaKey].(type) {
	case ErrorPayload:
		return &v
	case map[string]any:
		p := &ErrorPayload{}
		p.Code, _ = v["code"].(string)
		p.Reason, _ = v["reason"].(string)
		p.Hint, _ = v["hint"].(string)
		return p
	}
	return nil
}

// refusalResult renders a refusal so that an agent can act on it: what
// was refused and what is allowed instead.
func refusalResult(r *sqlguard.Refusal) *mcp.CallToolResult {
	text := "Refused (" + r.Code + "): " + r.Reason + "."
	if r.Hint != "" {
		text += " Allowed instead: " + r.Hint + "."
	}
	return failureResult(ErrorPayload{Code: r.Code, Reason: r.Reason, Hint: r.Hint}, text)
}

// EncodeError says that a result could not be encoded as JSON. The call is
// answered with it instead of the result: a request is never left without
// an answer.
type EncodeError struct{ Err error }

func (e *EncodeError) Error() string { return "encode the result: " + e.Err.Error() }

func (e *EncodeError) Unwrap() error { return e.Err }

// encodeStructured turns a result's structured content into the JSON it
// will be sent as, so that a value that cannot be encoded is found here,
// while the call can still be answered, and not in the transport, which
// would drop the response.
func encodeStructured(res *mcp.CallToolResult) error {
	switch v := res.StructuredContent.(type) {
	case nil:
		return nil
	case json.RawMessage:
		if !json.Valid(v) {
			return &EncodeError{Err: errors.New("the structured content is not valid JSON")}
		}
		return nil
	}
	b, err := json.Marshal(res.StructuredContent)
	if err != nil {
		return &EncodeError{Err: err}
	}
	res.StructuredContent = json.RawMessage(b)
	return nil
}

// respond audits a call's outcome and turns it into the tool result:
// a refusal, a failure, or success (ev.Decision defaults to allowed).
func (e *Env) respond(ctx context.Context, ev audit.Event, start time.Time, refusal *sqlguard.Refusal, err error, success *mcp.CallToolResult) *mcp.CallToolResult {
	if refusal == nil && err == nil && success != nil {
		err = encodeStructured(success)
	}
	ev.Elapsed = time.Since(start)
	out := success
	switch {
	case refusal != nil:
		if e.ReadOnly && strings.Contains(refusal.Hint, "migrate_dry_run") {
			r := *refusal
			r.Hint = "this connection is read-only: the write tools (migrate_dry_run, apply_migration_with_ticket) are served by the airlock service, which a human runs; ask them for its URL and a token"
			refusal = &r
		}
		ev.Decision, ev.Reason = audit.Refused, refusal.Error()
		out = refusalResult(refusal)
	case err != nil:
		out, ev.Reason = errorResult(err)
		ev.Decision = audit.Failed
	case ev.Decision == "":
		ev.Decision = audit.Allowed
	}
	e.For(ctx).record(ev)
	return out
}

// errorResult reports a failure without anything that could carry
// connection details: a failed migration statement names the statement and
// PostgreSQL's message, anything else only PostgreSQL's own message fields.
func errorResult(err error) (*mcp.CallToolResult, string) {
	var ce *migrate.CascadeError
	if errors.As(err, &ce) {
		// The tables reached stay out of the answer: the agent may not see them.
		payload := ErrorPayload{Code: "cascade_outside_scope", Reason: ce.Error(),
			Hint: "delete or update only rows no table outside the scope's write tables references with ON DELETE/ON UPDATE CASCADE, SET NULL or SET DEFAULT, or ask for those tables to be write tables"}
		return failureResult(payload, "Failed (cascade_outside_scope): "+ce.Error()+". "+payload.Hint+"."), payload.Code + ": " + payload.Reason + " (" + strings.Join(ce.Tables, ", ") + ")"
	}
	var se *migrate.StatementError
	if errors.As(err, &se) {
		payload := ErrorPayload{Code: "statement_failed", Reason: se.Error(),
			Hint: "fix the statement and dry-run it again; nothing was applied"}
		return failureResult(payload, "Failed (statement_failed): "+se.Error()+". Nothing was applied."), payload.Code + ": " + payload.Reason
	}
	var ee *EncodeError
	if errors.As(err, &ee) {
		payload := ErrorPayload{Code: "result_not_encodable", Reason: "the result could not be encoded as JSON (" + ee.Err.Error() + ")",
			Hint: "nothing was changed; select fewer or other columns, or cast the failing one to text"}
		return failureResult(payload, "Failed (result_not_encodable): "+payload.Reason+". "+payload.Hint+"."), payload.Code + ": " + payload.Reason
	}
	payload := ErrorPayload{Code: "database_error", Reason: "the query failed"}
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr):
		payload.Reason = fmt.Sprintf("%s (SQLSTATE %s)", pgErr.Message, pgErr.Code)
		payload.Hint = pgErr.Hint
		switch pgErr.Code {
		case pgerrcode.QueryCanceled:
			payload.Code = "timeout"
			payload.Hint = "the statement ran past the scope's statement_timeout; narrow it with WHERE or aggregate"
		case pgerrcode.LockNotAvailable:
			payload.Code = "lock_timeout"
			payload.Hint = "another session holds a lock on the table; try again later"
		default:
			if connectionLost(err) {
				payload.Code = "database_unavailable"
				payload.Hint = "the database restarted, is shutting down or dropped the connection; try again shortly"
			}
		}
	case errors.Is(err, context.DeadlineExceeded):
		payload.Code, payload.Reason = "timeout", "the call ran out of time"
	case errors.Is(err, context.Canceled):
		payload.Code, payload.Reason = "canceled", "the call was canceled"
	default:
		payload.Code, payload.Reason = "database_unavailable", "the database could not be reached; try again shortly"
	}
	text := "Failed (" + payload.Code + "): " + payload.Reason + "."
	if payload.Hint != "" {
		text += " " + payload.Hint + "."
	}
	return failureResult(payload, text), payload.Code + ": " + payload.Reason
}

// connectionLost reports whether err says that the connection to the
// database broke (the server restarted, shut down or went away), as opposed
// to anything about the statement.
func connectionLost(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case pgerrcode.AdminShutdown, pgerrcode.CrashShutdown, pgerrcode.CannotConnectNow:
			return true
		}
		return strings.HasPrefix(pgErr.Code, "08") // connection exception
	}
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	return pgconn.SafeToRetry(err) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func boolPtr(b bool) *bool { return &b }

func utf8Valid(s string) bool { return utf8.ValidString(s) }

// rawInputSchema sets a hand-written input schema. Input schemas are
// written by hand because they carry limits (scalar-only params, minimums)
// that struct tags cannot express; output schemas are generated from the
// result types.
func rawInputSchema(schema string) mcp.ToolOption {
	return func(t *mcp.Tool) {
		t.InputSchema = mcp.ToolInputSchema{}
		t.RawInputSchema = json.RawMessage(schema)
	}
}
