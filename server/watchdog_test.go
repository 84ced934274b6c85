package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlock-dev/airlock/audit"
	"github.com/airlock-dev/airlock/internal/pgtest"
	"github.com/airlock-dev/airlock/roles"
	"github.com/airlock-dev/airlock/scopes"
)

// TestWatchdog: what an agent login's own psql session can do that no
// grant forbids, the service undoes: a statement run past the scope's
// limit (statement_timeout raised with SET), a transaction left idle with
// its locks, a prepared transaction (with a gid chosen to break quoting),
// a large object. Everything else, the service's own work included, is
// left alone.
func TestWatchdog(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	adminURL := pgtest.NewDatabase(t)
	admin, err := pgxpool.New(ctx, adminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	suffix := strings.ReplaceAll(uuid.NewString(), "-", "")[:10]
	agent, service := "wd_agent_"+suffix, "wd_service_"+suffix
	scope, err := scopes.Parse([]byte(`{"name": "wd-` + suffix + `", "read": {"tables": {"public.orders": {}}, "statement_timeout_ms": 100}}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{agent, service} {
		if _, err := admin.Exec(ctx, "CREATE ROLE "+l+" LOGIN"); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		c := pgtest.Connect(t, pgtest.AdminURL(t))
		for _, r := range []string{service, agent, scope.ReadRole(), scope.WriteRole(), scope.MaskRole()} {
			c.Exec(context.Background(), "DROP OWNED BY "+pgx.Identifier{r}.Sanitize())
			c.Exec(context.Background(), "DROP ROLE IF EXISTS "+pgx.Identifier{r}.Sanitize())
		}
	})
	if _, err := roles.Apply(ctx, admin, scope, roles.Options{GrantTo: []string{agent}, Service: []string{service}}); err != nil {
		t.Fatal(err)
	}
	as := func(login string) string { return strings.Replace(adminURL, "postgres@", login+"@", 1) }

	// The agent's sessions, outside airlock.
	sleeper := pgtest.Connect(t, as(agent))
	slept := make(chan error, 1)
	go func() {
		_, err := sleeper.Exec(ctx, "SET statement_timeout = 0; SELECT pg_sleep(30)")
		slept <- err
	}()
	idle := pgtest.Connect(t, as(agent))
	if _, err := idle.Exec(ctx, "BEGIN; SET idle_in_transaction_session_timeout = 0; SELECT count(*) FROM public.orders"); err != nil {
		t.Fatal(err)
	}
	gid := `agent'); DROP TABLE orders; --` + suffix
	preparer := pgtest.Connect(t, as(agent))
	if _, err := preparer.Exec(ctx, "BEGIN; SELECT count(*) FROM public.orders; PREPARE TRANSACTION '"+strings.ReplaceAll(gid, "'", "''")+"'"); err != nil {
		t.Fatal(err)
	}
	var lo uint32
	if err := pgtest.Connect(t, as(agent)).QueryRow(ctx, "SELECT lo_create(0)").Scan(&lo); err != nil {
		t.Fatal(err)
	}
	// The service's own connection, idle in a transaction too, is its own.
	svc, err := pgxpool.New(ctx, as(service))
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	own := pgtest.Connect(t, as(service))
	if _, err := own.Exec(ctx, "BEGIN; SELECT 1"); err != nil {
		t.Fatal(err)
	}

	time.Sleep(400 * time.Millisecond) // past 100 ms + the test's grace
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	log := audit.NewLog(nil, logger)
	w := &watchdog{pool: svc, scope: scope, audit: log, logger: logger, grace: 200 * time.Millisecond}
	w.sweep(ctx)

	select {
	case err := <-slept:
		var pe *pgconn.PgError
		if err == nil || (errors.As(err, &pe) && pe.Code == "57014") {
			t.Errorf("the overlong statement: %v, want its session ended", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("the overlong statement still runs")
	}
	if _, err := idle.Exec(ctx, "SELECT 1"); err == nil {
		t.Error("the idle transaction's session is still there")
	}
	var n int
	admin.QueryRow(ctx, "SELECT count(*) FROM pg_prepared_xacts WHERE gid = $1", gid).Scan(&n)
	if n != 0 {
		t.Error("the agent's prepared transaction is still there")
	}
	admin.QueryRow(ctx, "SELECT count(*) FROM pg_largeobject_metadata WHERE oid = $1", lo).Scan(&n)
	if n != 0 {
		t.Error("the agent's large object is still there")
	}
	admin.QueryRow(ctx, "SELECT count(*) FROM public.orders").Scan(&n)
	if n == 0 {
		t.Error("orders is empty")
	}
	if _, err := own.Exec(ctx, "SELECT 1"); err != nil {
		t.Errorf("the service's own session was ended: %v", err)
	}
}
