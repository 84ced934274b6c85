package audit

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Decision is what became of an audited action: the log's decision column.
type Decision string

// Decisions recorded in the log. The column holds their text; Failed is
// "error" for the rows written before it had a name.
const (
	Allowed  Decision = "allowed"
	Refused  Decision = "refused"
	Failed   Decision = "error"
	Reviewed Decision = "reviewed"
)

// Decisions lists every decision, in the order the review page offers
// them as filters.
var Decisions = []Decision{Allowed, Refused, Failed, Reviewed}

// Event is one audited action.
type Event struct {
	Time        time.Time
	Session     string
	Scope       string
	Actor       string // "agent" or the reviewer's name
	Tool        string // tool name or review action (commit, rollback, reap)
	SQL         string
	Fingerprint string
	Decision    Decision
	Reason      string
	Rows        int64
	Elapsed     time.Duration
	ChangeID    string
}

// Schema is the DDL for airlock's own schema, applied idempotently.
const Schema = `
CREATE SCHEMA IF NOT EXISTS airlock;
REVOKE ALL ON SCHEMA airlock FROM PUBLIC;
CREATE TABLE IF NOT EXISTS airlock.audit_log (
	id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	at          timestamptz NOT NULL,
	session     text NOT NULL,
	scope       text NOT NULL,
	actor       text NOT NULL,
	tool        text NOT NULL,
	sql         text,
	fingerprint text,
	decision    text NOT NULL,
	reason      text,
	rows        bigint,
	elapsed_ms  double precision,
	change_id   uuid
);
CREATE INDEX IF NOT EXISTS audit_log_at ON airlock.audit_log (at);
CREATE TABLE IF NOT EXISTS airlock.mask_keys (
	scope text PRIMARY KEY,
	key   bytea NOT NULL
);
-- The login that wrote each row, set by the database: whoever can append
-- to the log cannot write another login's name (docs/architecture.md,
-- Principals).
ALTER TABLE airlock.audit_log ADD COLUMN IF NOT EXISTS login name NOT NULL DEFAULT session_user;
CREATE OR REPLACE FUNCTION airlock.stamp_audit_login() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	NEW.login := session_user;
	RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS audit_log_login ON airlock.audit_log;
CREATE TRIGGER audit_log_login BEFORE INSERT ON airlock.audit_log
	FOR EACH ROW EXECUTE FUNCTION airlock.stamp_audit_login();
REVOKE ALL ON FUNCTION airlock.stamp_audit_login() FROM PUBLIC;`

// EnsureSchema creates airlock's schema and tables when missing. A
// transaction-scoped advisory lock serializes concurrent starters, since
// CREATE ... IF NOT EXISTS races on the catalog.
//
// When the tables already exist nothing is created, so that a login role
// without CREATE on the database (the least-privilege setup, where an admin
// ran `airlock scope apply`) can start.
func EnsureSchema(ctx context.Context, pool *pgxpool.Pool, ddl ...string) error {
	ready, err := SchemaReady(ctx, pool)
	if err != nil {
		return err
	}
	if ready {
		return nil
	}
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(7262911)"); err != nil {
			return err
		}
		for _, d := range append(append([]string{Schema}, ddl...), "COMMENT ON SCHEMA airlock IS '"+SchemaVersion+"'") {
			if _, err := tx.Exec(ctx, d); err != nil {
				return fmt.Errorf("create airlock schema: %w", err)
			}
		}
		return nil
	})
}

// SchemaVersion is the comment on the airlock schema that says its tables,
// triggers and columns are this version's. A schema without it (none, or
// an older one) is brought up to date by EnsureSchema, which needs the
// rights of the admin who runs `airlock scope apply`.
const SchemaVersion = "airlock schema 5"

// SchemaReady reports whether airlock's schema exists at this version. It
// creates nothing.
func SchemaReady(ctx context.Context, q interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}) (bool, error) {
	var ready bool
	err := q.QueryRow(ctx, `SELECT coalesce(pg_catalog.obj_description(n.oid, 'pg_namespace') = $1, false)
		FROM (SELECT 1) one LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = 'airlock'`, SchemaVersion).Scan(&ready)
	if err != nil {
		return false, fmt.Errorf("check airlock schema: %w", err)
	}
	return ready, nil
}

// Log writes events to slog at once and to the database in batches.
type Log struct {
	pool   *pgxpool.Pool
	logger *slog.Logger

	mu      sync.Mutex
	pending []Event       // recorded, not yet written
	closed  bool          // Close was called: Record queues nothing more
	wake    chan struct{} // a batch has begun (capacity 1)
	done    chan struct{}
	once    sync.Once
}

// maxPending bounds the events waiting for the database: past it a row is
// dropped from the table (its stderr line is written all the same).
const maxPending = 4096

// maxBatch is the most events one COPY writes.
const maxBatch = 1024

// NewLog starts the background writer. pool may be nil (stderr only).
func NewLog(pool *pgxpool.Pool, logger *slog.Logger) *Log {
	l := &Log{pool: pool, logger: logger, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go l.run()
	return l
}

// Record logs ev. It never blocks on the database: when the queue is full
// the row is dropped from the table (the stderr line is still written) and
// a warning says so. Only the first event of a batch wakes the writer: a
// wake-up per event cost a tool call more CPU than the rest of auditing.
func (l *Log) Record(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	l.logger.LogAttrs(context.Background(), slog.LevelInfo, "audit",
		slog.String("session", ev.Session), slog.String("scope", ev.Scope), slog.String("actor", ev.Actor),
		slog.String("tool", ev.Tool), slog.String("decision", string(ev.Decision)), slog.String("reason", ev.Reason),
		slog.String("sql", ev.SQL), slog.String("fingerprint", ev.Fingerprint), slog.Int64("rows", ev.Rows),
		slog.Float64("elapsed_ms", float64(ev.Elapsed.Microseconds())/1000), slog.String("change_id", ev.ChangeID))
	if l.pool == nil {
		return
	}
	l.mu.Lock()
	if l.closed || len(l.pending) >= maxPending {
		closed := l.closed
		l.mu.Unlock()
		if closed {
			l.logger.Warn("audit log closed; event written to stderr only", "tool", ev.Tool)
		} else {
			l.logger.Warn("audit queue full; event written to stderr only", "tool", ev.Tool)
		}
		return
	}
	l.pending = append(l.pending, ev)
	first := len(l.pending) == 1
	l.mu.Unlock()
	if first {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}

// Close flushes queued events and stops the writer.
func (l *Log) Close() {
	l.once.Do(func() {
		l.mu.Lock()
		l.closed = true
		l.mu.Unlock()
		close(l.wake)
	})
	<-l.done
}

// flushDelay is how long the writer gathers events before one COPY: under
// load many calls share a round trip, and the database does not pay one
// commit per tool call.
const flushDelay = 50 * time.Millisecond

func (l *Log) run() {
	defer close(l.done)
	for {
		_, open := <-l.wake
		if open {
			// Gather; Close cuts the wait short.
			t := time.NewTimer(flushDelay)
			select {
			case <-t.C:
			case _, open = <-l.wake:
			}
			t.Stop()
		}
		for {
			l.mu.Lock()
			n := min(len(l.pending), maxBatch)
			batch := l.pending[:n:n]
			l.pending = l.pending[n:]
			if len(l.pending) == 0 {
				l.pending = nil
			}
			l.mu.Unlock()
			if n == 0 {
				break
			}
			if err := l.write(batch); err != nil {
				l.logger.Error("audit write failed; events are in this log only", "err", err, "events", len(batch))
			}
		}
		if !open {
			return
		}
	}
}

// auditColumns are the columns write fills; id and login are the
// database's.
var auditColumns = []string{"at", "session", "scope", "actor", "tool", "sql", "fingerprint", "decision", "reason", "rows", "elapsed_ms", "change_id"}

// write appends events with one COPY: a batch of INSERTs costs the
// database a parse, bind and execute per event and the server an encoding
// of each, which at hundreds of calls a second was a tenth of a call's CPU.
func (l *Log) write(events []Event) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rows := make([][]any, len(events))
	for i, ev := range events {
		var change any
		if ev.ChangeID != "" {
			change = ev.ChangeID
		}
		rows[i] = []any{ev.Time, ev.Session, ev.Scope, ev.Actor, ev.Tool, nullable(ev.SQL), nullable(ev.Fingerprint),
			string(ev.Decision), nullable(ev.Reason), ev.Rows, float64(ev.Elapsed.Microseconds()) / 1000, change}
	}
	_, err := l.pool.CopyFrom(ctx, pgx.Identifier{"airlock", "audit_log"}, auditColumns, pgx.CopyFromRows(rows))
	return err
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
