package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/airlock-dev/airlock/audit"
	"github.com/airlock-dev/airlock/doctor"
	"github.com/airlock-dev/airlock/review"
	"github.com/airlock-dev/airlock/roles"
	"github.com/airlock-dev/airlock/scopes"
	"github.com/airlock-dev/airlock/server"
	"github.com/airlock-dev/airlock/tools"
)

// probeEnv, set in a child's environment, makes the driver a startup probe:
// it runs serve's startup steps one by one, timed, in a fresh process (so
// that nothing is warm), and prints them as JSON. Its value is the scope
// file; probeExecEnv holds the parent's clock just before the exec.
const (
	probeEnv     = "AIRLOCK_BENCH_PROBE_SCOPE"
	probeExecEnv = "AIRLOCK_BENCH_PROBE_EXEC_NS"
)

// mainEntered is taken as early as the program can: a package variable is
// initialized after every imported package's init and before main.
var mainEntered = time.Now()

// startupStep is one timed step of serve's startup, in the order serve
// (cmd/airlock/serve.go, server.New) runs them.
type startupStep struct {
	Name string        `json:"name"`
	D    time.Duration `json:"d"`
}

// startupSteps names the probe's steps, in order, with what each covers.
// The steps marked part add up to what serve does before its first answer;
// the others are there to break one of those down.
var startupSteps = []struct {
	name, what string
	part       bool
}{
	{"exec → main", "fork/exec of a binary linking the same packages as airlock, Go runtime start, every package's init", true},
	{"pg_query first parse", "the first pg_query.Parse in a process (cgo, parser memory contexts); serve pays it at its first guarded call", true},
	{"scope load", "scopes.Load: read the file, validate it against the embedded JSON Schema, semantic checks", true},
	{"pool connect", "pgxpool.NewWithConfig + Ping as the login role (TCP, startup, auth), as openPool does", true},
	{"doctor checks", "doctor.StartupFailures: the safety checks serve refuses to start without", true},
	{"audit.EnsureSchema", "one query: are airlock's tables there", true},
	{"catalog load", "tools.Catalog.Policy: the scope's tables and columns from pg_catalog", true},
	{"server.New again, warm", "server.New with everything above warm: doctor, schema, catalog, tool set (not in the sum)", false},
	{"initialize + first call in-process", "initialize and the first query_readonly through an in-process MCP client (guard cold for this SQL, type names)", true},
	{"second call in-process, warm", "the same tool again, for comparison (not in the sum)", false},
	{"doctor checks, warm", "doctor.StartupFailures again on warm connections (not in the sum)", false},
	{"roles.Plan, warm", "the scope-drift part of the doctor's checks alone: compile the scope to roles and diff with the catalog (not in the sum)", false},
}

// measureStartupSteps runs the probe in e.opt.starts fresh child processes
// and keeps each step's median.
func measureStartupSteps(ctx context.Context, e *benchEnv, r *report) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	samples := make([][]time.Duration, len(startupSteps))
	for i := 0; i < e.opt.starts; i++ {
		cmd := exec.CommandContext(ctx, self)
		t0 := time.Now()
		cmd.Env = append(os.Environ(), probeEnv+"="+e.scopes["default"], urlEnv+"="+e.agentURL,
			probeExecEnv+"="+strconv.FormatInt(t0.UnixNano(), 10))
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("startup probe: %w", err)
		}
		var steps []startupStep
		if err := json.Unmarshal(out, &steps); err != nil {
			return fmt.Errorf("startup probe output: %w", err)
		}
		if len(steps) != len(startupSteps) {
			return fmt.Errorf("startup probe: %d steps, want %d", len(steps), len(startupSteps))
		}
		for j, s := range steps {
			samples[j] = append(samples[j], s.D)
		}
	}
	for j, s := range startupSteps {
		r.startup = append(r.startup, stepFigure{name: s.name, what: s.what, part: s.part, d: newDist(samples[j]).p50()})
	}
	return nil
}

// runProbe is the child's side of measureStartupSteps.
func runProbe() int {
	steps, err := probe(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "startup probe:", err)
		return 1
	}
	if err := json.NewEncoder(os.Stdout).Encode(steps); err != nil {
		fmt.Fprintln(os.Stderr, "startup probe:", err)
		return 1
	}
	return 0
}

func probe(ctx context.Context) ([]startupStep, error) {
	ns, err := strconv.ParseInt(os.Getenv(probeExecEnv), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", probeExecEnv, err)
	}
	steps := []startupStep{{"exec → main", mainEntered.Sub(time.Unix(0, ns))}}
	t := time.Now()
	lap := func(name string) {
		now := time.Now()
		steps = append(steps, startupStep{name, now.Sub(t)})
		t = now
	}
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))

	if _, err := pg_query.Parse("SELECT 1"); err != nil {
		return nil, err
	}
	lap("pg_query first parse")
	scope, err := scopes.Load(os.Getenv(probeEnv))
	if err != nil {
		return nil, err
	}
	lap("scope load")
	pool, err := openPool(ctx, scope.URLEnv())
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	lap("pool connect")
	if fails := doctor.StartupFailures(ctx, pool, scope, doctor.Options{}); len(fails) > 0 {
		return nil, fmt.Errorf("doctor: %+v", fails)
	}
	lap("doctor checks")
	if err := audit.EnsureSchema(ctx, pool, review.Schema); err != nil {
		return nil, err
	}
	lap("audit.EnsureSchema")
	if _, err := tools.NewCatalog(pool, scope, logger).Policy(ctx); err != nil {
		return nil, err
	}
	lap("catalog load")
	srv, err := server.New(ctx, server.Config{Scope: scope, Pool: pool, Logger: logger})
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	lap("server.New again, warm")

	c, err := client.NewInProcessClient(srv.MCP())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.Start(ctx); err != nil {
		return nil, err
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "airlock-bench-probe", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		return nil, err
	}
	for i, name := range []string{"initialize + first call in-process", "second call in-process, warm"} {
		req := mcp.CallToolRequest{}
		req.Params.Name = "query_readonly"
		req.Params.Arguments = map[string]any{"sql": pointSQL, "params": []any{pointID(i)}}
		res, err := c.CallTool(ctx, req)
		if err != nil {
			return nil, err
		}
		if res.IsError {
			return nil, fmt.Errorf("query_readonly: %s", resultText(res))
		}
		lap(name)
	}
	fails := doctor.StartupFailures(ctx, pool, scope, doctor.Options{})
	lap("doctor checks, warm")
	if _, err := roles.Plan(ctx, pool, scope, roles.Options{}); err != nil {
		return nil, err
	}
	lap("roles.Plan, warm")
	if len(fails) > 0 {
		return nil, fmt.Errorf("doctor: %+v", fails)
	}
	return steps, nil
}

// openPool mirrors cmd/airlock's openPool: the same size and runtime
// parameters, so that connecting costs what it costs serve.
func openPool(ctx context.Context, env string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(os.Getenv(env))
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = 8
	cfg.ConnConfig.RuntimeParams["application_name"] = "airlock"
	cfg.ConnConfig.RuntimeParams["lock_timeout"] = "5000"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}
