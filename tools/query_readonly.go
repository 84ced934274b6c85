package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/airlock-dev/airlock/audit"
	"github.com/airlock-dev/airlock/scopes"
	"github.com/airlock-dev/airlock/sqlguard"
)

// maxParams bounds the number of bound parameters in one call.
const maxParams = 100

// QueryArgs are query_readonly's arguments.
type QueryArgs struct {
	SQL     string `json:"sql"`
	Params  []any  `json:"params,omitempty"`
	MaxRows *int   `json:"max_rows,omitempty"`
}

// QueryColumn describes one output column.
type QueryColumn struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	Masked bool   `json:"masked,omitempty"`
}

// QueryResult is query_readonly's structured output.
type QueryResult struct {
	Columns         []QueryColumn `json:"columns"`
	Rows            [][]any       `json:"rows"`
	RowCount        int           `json:"row_count"`
	Truncated       bool          `json:"truncated"`
	TruncatedReason string        `json:"truncated_reason,omitempty"`
	ElapsedMS       float64       `json:"elapsed_ms"`
}

// QueryReadonly runs one checked SELECT in a read-only transaction that is
// always rolled back.
type QueryReadonly struct {
	env   *Env
	types typeNames
	plans *planCache
	setup atomic.Pointer[cachedSetup]
}

var _ Tool = (*QueryReadonly)(nil)

// NewQueryReadonly returns the query_readonly tool.
func NewQueryReadonly(env *Env) *QueryReadonly {
	return &QueryReadonly{env: env, plans: newPlanCache(512)}
}

const queryDescription = `Run ONE read-only SQL query (SELECT, VALUES, WITH ... SELECT, or EXPLAIN without ANALYZE) against the tables this scope allows, and get typed rows back.

Rules: one statement per call; only in-scope tables and columns (call list_tables / describe_table first); no writes, no locking clauses, no SELECT INTO; only built-in immutable or stable functions. SELECT * is refused on tables with column restrictions: list the columns. Masked columns may only be selected as plain output columns and come back as "masked:<hash>" (equal inputs give equal hashes); they cannot be used in WHERE, JOIN, ORDER BY, GROUP BY or expressions. EXPLAIN is refused over tables with a row filter or row-level security, and over views; functions that look up catalog objects by oid or name are refused.
Pass values as params ($1, $2, ...), never by pasting them into the SQL. At most max_rows rows come back (truncated: true says when more existed): for counts and totals use aggregates (count(*), sum(...), GROUP BY) instead of fetching rows.
Example: {"sql": "SELECT status, count(*) FROM orders WHERE created_at > $1 GROUP BY status", "params": ["2024-01-01"]}`

const queryInputSchema = `{
  "type": "object",
  "properties": {
    "sql": {"type": "string", "minLength": 1, "description": "One SELECT / VALUES / WITH ... SELECT / EXPLAIN statement. Use $1, $2 ... for values."},
    "params": {"type": "array", "maxItems": 100, "items": {"type": ["string", "number", "integer", "boolean", "null"]}, "description": "Values bound to $1, $2, ... in order (JSON scalars)."},
    "max_rows": {"type": "integer", "minimum": 1, "description": "Row cap for this call; cannot exceed the scope's read.max_rows."}
  },
  "required": ["sql"],
  "additionalProperties": false
}`

// Definition describes the tool to agents.
func (q *QueryReadonly) Definition() mcp.Tool {
	return mcp.NewTool(scopes.ToolQueryReadonly,
		mcp.WithDescription(queryDescription),
		rawInputSchema(queryInputSchema),
		mcp.WithOutputSchema[QueryResult](),
		mcp.WithToolAnnotation(mcp.ToolAnnotation{
			Title:           "Read-only SQL query",
			ReadOnlyHint:    boolPtr(true),
			DestructiveHint: boolPtr(false),
			IdempotentHint:  boolPtr(true),
			OpenWorldHint:   boolPtr(false),
		}),
	)
}

// Handle runs one call.
func (q *QueryReadonly) Handle(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	start := time.Now()
	ev := audit.Event{Tool: scopes.ToolQueryReadonly}
	var args QueryArgs
	if r := bindArgs(req, scopes.ToolQueryReadonly, queryInputSchema, &args); r != nil {
		return q.env.respond(ctx, ev, start, r, nil, nil), nil
	}
	ev.SQL = args.SQL
	res, plan, refusal, err := q.run(ctx, args)
	if plan != nil {
		ev.Fingerprint = plan.Fingerprint
	}
	if refusal != nil || err != nil {
		return q.env.respond(ctx, ev, start, refusal, err, nil), nil
	}
	ev.Rows, ev.Reason = int64(res.RowCount()), res.TruncatedReason
	out := &mcp.CallToolResult{}
	mode := resultsFrom(ctx)
	if mode != ResultsText {
		structured, err := res.structured()
		if err != nil {
			return q.env.respond(ctx, ev, start, nil, &EncodeError{Err: err}, nil), nil
		}
		out.StructuredContent = structured
	}
	out.Content = []mcp.Content{mcp.NewTextContent(res.text(mode != ResultsStructured))}
	return q.env.respond(ctx, ev, start, nil, nil, out), nil
}

// CheckInput refuses SQL text that must never reach the parser.
func CheckInput(sql string, maxBytes int) *sqlguard.Refusal {
	switch {
	case strings.TrimSpace(sql) == "":
		return &sqlguard.Refusal{Code: "empty_sql", Reason: "sql is empty", Hint: "send one SELECT statement"}
	case len(sql) > maxBytes:
		return &sqlguard.Refusal{Code: "sql_too_large", Reason: fmt.Sprintf("sql is %d bytes; the limit is %d", len(sql), maxBytes), Hint: "send a shorter statement"}
	case strings.IndexByte(sql, 0) >= 0:
		return &sqlguard.Refusal{Code: "nul_byte", Reason: "sql contains a NUL byte", Hint: "remove it"}
	case !utf8Valid(sql):
		return &sqlguard.Refusal{Code: "invalid_utf8", Reason: "sql is not valid UTF-8", Hint: "send UTF-8 text"}
	}
	return nil
}

func (q *QueryReadonly) run(ctx context.Context, args QueryArgs) (*answer, *sqlguard.ReadPlan, *sqlguard.Refusal, error) {
	read := q.env.Scope.Read
	if r := CheckInput(args.SQL, read.MaxSQLBytes); r != nil {
		return nil, nil, r, nil
	}
	maxRows := read.MaxRows
	if args.MaxRows != nil {
		if *args.MaxRows < 1 {
			return nil, nil, &sqlguard.Refusal{Code: "bad_arguments", Reason: "max_rows must be at least 1"}, nil
		}
		maxRows = min(maxRows, *args.MaxRows)
	}
	params, r := encodeParams(args.Params)
	if r != nil {
		return nil, nil, r, nil
	}
	_, catalog := q.env.Target(ctx)
	policy, err := catalog.Policy(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	if q.env.UnsafeSkipGuard {
		res, err := q.execute(ctx, &sqlguard.ReadPlan{SQL: args.SQL}, params, maxRows)
		return res, nil, nil, err
	}
	plan, err := q.plans.check(policy, args.SQL, maxRows)
	if err != nil {
		if ref, ok := err.(*sqlguard.Refusal); ok {
			return nil, nil, ref, nil
		}
		return nil, nil, nil, err
	}
	res, err := q.execute(ctx, plan, params, maxRows)
	if connectionLost(err) {
		// The database restarted under a pooled connection. A read is
		// rolled back whatever happens, so it is safe to run once more, on
		// a fresh connection (the failed one was discarded).
		q.env.Log.Info("the database connection was lost; retrying the read once", "err", err)
		res, err = q.execute(ctx, plan, params, maxRows)
	}
	return res, plan, nil, err
}

// encodeParams turns JSON scalars into text-format parameter values; the
// server infers their types as it does for literals.
func encodeParams(in []any) ([][]byte, *sqlguard.Refusal) {
	if len(in) > maxParams {
		return nil, &sqlguard.Refusal{Code: "bad_arguments", Reason: fmt.Sprintf("%d params; at most %d", len(in), maxParams)}
	}
	out := make([][]byte, len(in))
	for i, v := range in {
		switch v := v.(type) {
		case nil:
		case string:
			out[i] = []byte(v)
		case json.Number:
			out[i] = []byte(v.String())
		case bool:
			out[i] = []byte(strconv.FormatBool(v))
		default:
			return nil, &sqlguard.Refusal{Code: "bad_arguments", Reason: fmt.Sprintf("params[%d] is not a JSON scalar", i), Hint: "params are strings, numbers, booleans or null; pass arrays as a string literal like '{1,2}'"}
		}
	}
	return out, nil
}

// execute sends BEGIN READ ONLY, the SET LOCAL limits, the query and
// ROLLBACK as one pipeline: one round trip for the common case. The query
// goes through Parse/Bind/Execute (extended protocol), so a second
// statement in its text is a protocol error, never a second command.
func (q *QueryReadonly) execute(ctx context.Context, plan *sqlguard.ReadPlan, params [][]byte, maxRows int) (res *answer, err error) {
	read := q.env.Scope.Read
	ctx, cancel := context.WithTimeout(ctx, time.Duration(read.StatementTimeoutMS)*time.Millisecond+5*time.Second)
	defer cancel()
	start := time.Now()

	pool, _ := q.env.Target(ctx)
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	pg := conn.Conn().PgConn()
	dirty := false
	defer func() {
		// A connection that saw an error, is not idle, or could not drop
		// session locks may carry state from the agent's statement: never
		// return it to the pool.
		if err != nil || dirty || pg.TxStatus() != 'I' {
			conn.Hijack().Close(context.Background())
			return
		}
		conn.Release()
	}()

	b := &pgconn.Batch{}
	setup := q.readSetup(read, q.env.ReadRole)
	names, err := preparedOn(ctx, pg, setup, rollbackSQL, sessionLocksSQL)
	if err != nil {
		return nil, err
	}
	for _, name := range names[:len(setup)] {
		b.ExecPrepared(name, nil, nil, nil)
	}
	b.ExecParams(plan.SQL, params, nil, nil, nil)
	b.ExecPrepared(names[len(setup)], nil, nil, nil)
	// Session-level advisory locks survive the rollback: whether the
	// statement managed to take one is asked in the same round trip.
	b.ExecPrepared(names[len(setup)+1], nil, nil, nil)
	mrr := pg.ExecBatch(ctx, b)

	for range setup {
		if !mrr.NextResult() {
			return nil, batchErr(mrr)
		}
		if _, err := mrr.ResultReader().Close(); err != nil {
			mrr.Close()
			return nil, err
		}
	}
	if !mrr.NextResult() {
		return nil, batchErr(mrr)
	}
	res, err = q.readRows(ctx, mrr.ResultReader(), plan, maxRows)
	if err != nil {
		mrr.Close()
		return nil, err
	}
	if !mrr.NextResult() {
		return nil, batchErr(mrr)
	}
	if _, err := mrr.ResultReader().Close(); err != nil {
		mrr.Close()
		return nil, err
	}
	if mrr.NextResult() {
		// The answer stands either way; a connection that holds a lock,
		// or could not say, does not go back.
		rr := mrr.ResultReader()
		held := true
		for rr.NextRow() {
			held = string(rr.Values()[0]) != "f"
		}
		if _, uerr := rr.Close(); uerr != nil || held {
			dirty = true
		}
	} else {
		dirty = true
	}
	if cerr := mrr.Close(); cerr != nil {
		dirty = true
	}
	res.ElapsedMS = ms(time.Since(start))
	return res, nil
}

const rollbackSQL = "ROLLBACK"

// sessionLocksSQL asks whether the connection holds a session-level
// advisory lock, which a read's statement may have taken and its ROLLBACK
// does not release; such a connection is closed, not pooled
// (docs/architecture.md, Connections come back clean). Asking needs no
// privilege a login might lack: pg_advisory_unlock_all, sent before,
// is revoked from PUBLIC by scope apply --harden, and failed every call
// and cost each a new connection.
const sessionLocksSQL = `SELECT EXISTS (SELECT FROM pg_catalog.pg_locks
	WHERE locktype = 'advisory' AND pid = pg_catalog.pg_backend_pid())`

func batchErr(mrr *pgconn.MultiResultReader) error {
	if err := mrr.Close(); err != nil {
		return err
	}
	return fmt.Errorf("query: missing result")
}

// setupKey is what ReadSetup's statements depend on.
type setupKey struct {
	statementMS, lockMS int
	role                string
}

type cachedSetup struct {
	key   setupKey
	stmts []string
}

// readSetup is ReadSetup, built once per scope and role instead of on
// every call.
func (q *QueryReadonly) readSetup(read scopes.Read, role string) []string {
	key := setupKey{read.StatementTimeoutMS, read.LockTimeoutMS, role}
	if c := q.setup.Load(); c != nil && c.key == key {
		return c.stmts
	}
	c := &cachedSetup{key: key, stmts: ReadSetup(read, role)}
	q.setup.Store(c)
	return c.stmts
}

// ReadSetup is the transaction preamble query_readonly sends: BEGIN, then the limits and output
// formats set transaction-locally. set_config(name, value, true) is SET
// LOCAL; putting them all in one statement saves the server seven
// Parse/Bind/Execute cycles per call. The search_path leaves only
// pg_catalog for unqualified functions, operators and types (the guard
// qualifies every table), and the output settings fix the text formats
// values are converted from.
func ReadSetup(read scopes.Read, role string) []string {
	setup := []string{"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"}
	if role != "" {
		setup = append(setup, "SET LOCAL ROLE "+pgx.Identifier{role}.Sanitize())
	}
	return append(setup, fmt.Sprintf(`SELECT pg_catalog.set_config('statement_timeout', '%d', true),
			pg_catalog.set_config('lock_timeout', '%d', true),
			pg_catalog.set_config('idle_in_transaction_session_timeout', '%d', true),
			pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true),
			pg_catalog.set_config('bytea_output', 'hex', true),
			pg_catalog.set_config('DateStyle', 'ISO, YMD', true),
			pg_catalog.set_config('IntervalStyle', 'iso_8601', true),
			pg_catalog.set_config('TimeZone', 'UTC', true)`,
		read.StatementTimeoutMS, read.LockTimeoutMS, read.StatementTimeoutMS+5000))
}

// readRows streams the result and stops at the row cap, the byte cap or
// the end. Each row is encoded as it arrives (appendCell copies what it
// keeps), so the answer holds its JSON and nothing of pgx's buffers. The
// byte cap counts the encoded rows exactly.
func (q *QueryReadonly) readRows(ctx context.Context, rr *pgconn.ResultReader, plan *sqlguard.ReadPlan, maxRows int) (*answer, error) {
	read := q.env.Scope.Read
	fields := rr.FieldDescriptions()
	masked := make([]bool, len(fields))
	for _, i := range plan.MaskedOutputs {
		if i < len(masked) {
			masked[i] = true
		}
	}
	res := &answer{Columns: make([]QueryColumn, len(fields))}
	for i, f := range fields {
		res.Columns[i] = QueryColumn{Name: f.Name, Type: q.types.name(ctx, q.env, f.DataTypeOID), Masked: masked[i]}
	}
	var (
		row      []byte
		size     int
		cutCells int
	)
	for rr.NextRow() {
		if maxRows > 0 && res.RowCount() >= maxRows {
			res.Truncated = true
			res.TruncatedReason = fmt.Sprintf("more than %d rows; use count(*)/GROUP BY, or page by key", maxRows)
			break
		}
		row = append(row[:0], '[')
		for i, raw := range rr.Values() {
			if i > 0 {
				row = append(row, ',')
			}
			var cut bool
			row, cut = appendCell(row, fields[i].DataTypeOID, raw, read.MaxCellBytes)
			if cut {
				cutCells++
			}
		}
		row = append(row, ']')
		if size+len(row)+1 > read.MaxBytes && res.RowCount() > 0 {
			res.Truncated = true
			res.TruncatedReason = fmt.Sprintf("passed the %d-byte cap after %d rows; select fewer columns or aggregate", read.MaxBytes, res.RowCount())
			break
		}
		size += len(row) + 1
		res.addRow(row)
	}
	if _, err := rr.Close(); err != nil {
		return nil, err
	}
	if cutCells > 0 {
		note := fmt.Sprintf("%d cell(s) longer than %d bytes were cut; select substr(col, 1, n)", cutCells, read.MaxCellBytes)
		res.Truncated = true
		if res.TruncatedReason != "" {
			res.TruncatedReason += "; " + note
		} else {
			res.TruncatedReason = note
		}
	}
	return res, nil
}

// typeNames caches PostgreSQL type names by OID.
type typeNames struct {
	m sync.Map
}

var builtinTypes = pgtype.NewMap()

func (t *typeNames) name(ctx context.Context, env *Env, oid uint32) string {
	if n, ok := t.m.Load(oid); ok {
		return n.(string)
	}
	if typ, ok := builtinTypes.TypeForOID(oid); ok {
		return typ.Name
	}
	var name string
	pool, _ := env.Target(ctx)
	if err := pool.QueryRow(ctx, "SELECT pg_catalog.format_type($1, NULL)", oid).Scan(&name); err != nil {
		return strconv.FormatUint(uint64(oid), 10)
	}
	t.m.Store(oid, name)
	return name
}
