package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlock-dev/airlock/internal/pgcluster"
	"github.com/airlock-dev/airlock/scopes"
	"github.com/airlock-dev/airlock/tools"
)

const (
	// database is the seeded database's name.
	database = "airlock_bench"
	// loginRole is the least-privilege login airlock serve runs as: it
	// holds nothing of its own, only membership in the scope's roles,
	// granted by `airlock scope apply --grant-to`, as the README sets up.
	loginRole = "airlock_bench_login"
	urlEnv    = "AIRLOCK_DATABASE_URL"

	// customers serves the point query: one row by primary key.
	customers = 100_000
	// ordersPerCustomer rows per customer make the 100-row query an index
	// scan that returns exactly 100 rows.
	ordersPerCustomer = 100
	orderCustomers    = 2_000
)

// The queries measured, the same text for airlock and for raw pgx. Values
// go as parameters, as the tool's description asks agents to send them.
const (
	pointSQL   = "SELECT id, name, email, plan, balance, signed_up_at FROM customers WHERE id = $1"
	hundredSQL = "SELECT id, customer_id, status, total, paid, created_at FROM orders WHERE customer_id = $1 ORDER BY id"
	bigSQL     = "SELECT * FROM big"
)

// seedSQL creates the three tables. Its types are mixed on purpose:
// bigint, int, text, numeric, boolean, timestamptz each take their own
// path through the value conversion.
const seedSQL = `
CREATE TABLE customers (
	id bigint PRIMARY KEY,
	name text NOT NULL,
	email text NOT NULL,
	plan text NOT NULL,
	balance numeric(12,2) NOT NULL,
	signed_up_at timestamptz NOT NULL
);
INSERT INTO customers
SELECT g, 'Customer ' || g, 'user' || g || '@example.com',
	(ARRAY['free','team','business','enterprise'])[1 + g %% 4],
	(g %% 100000) / 100.0, timestamptz '2020-01-01' + g * interval '5 minutes'
FROM generate_series(1, %[1]d) g;

CREATE TABLE orders (
	id bigint PRIMARY KEY,
	customer_id int NOT NULL,
	status text NOT NULL,
	total numeric(12,2) NOT NULL,
	paid boolean NOT NULL,
	created_at timestamptz NOT NULL
);
INSERT INTO orders
SELECT g, 1 + g %% %[2]d, (ARRAY['new','paid','shipped','refunded'])[1 + g %% 4],
	(g %% 50000) / 100.0, g %% 3 <> 0, timestamptz '2021-01-01' + g * interval '1 minute'
FROM generate_series(1, %[3]d) g;
CREATE INDEX orders_customer_id ON orders (customer_id, id);

CREATE TABLE big AS
SELECT g::bigint AS id, md5(g::text) AS payload, (g %% 100)::int AS bucket,
	(g %% 100000) / 100.0 AS amount, g %% 2 = 0 AS flag,
	timestamptz '2022-01-01' + g * interval '1 second' AS at
FROM generate_series(1, %[4]d) g;
`

// mixedSeedSQL is the side-by-side figures' wide answer: 10,000 rows of
// 13 columns of mixed types, every value a function of the row number.
const mixedSeedSQL = `
CREATE TABLE mixed (
	id bigint PRIMARY KEY,
	qty int NOT NULL,
	name text NOT NULL,
	code varchar(16) NOT NULL,
	price numeric(12,2) NOT NULL,
	active boolean NOT NULL,
	day date NOT NULL,
	at timestamptz NOT NULL,
	uid uuid NOT NULL,
	attrs jsonb NOT NULL,
	score double precision NOT NULL,
	level smallint NOT NULL,
	note text
);
INSERT INTO mixed
SELECT g, (g * 7) % 1000, 'Item ' || g, 'C-' || lpad(g::text, 6, '0'), (g % 100000) / 100.0,
	g % 3 <> 0, date '2020-01-01' + g % 1500, timestamptz '2021-01-01' + g * interval '37 seconds',
	md5(g::text)::uuid, jsonb_build_object('k', g % 10, 'tags', jsonb_build_array('a', 'b')),
	g / 7.0, (g % 300)::smallint, CASE WHEN g % 5 = 0 THEN NULL ELSE 'note ' || left(md5(g::text), 12) END
FROM generate_series(1, 10000) g;
`

// scopeFiles are the two scopes the driver writes: the default caps (what
// a scope that says nothing about limits gets) and the largest caps the
// scope schema allows, for SELECT * on the big table. The max scope also
// reads the wide and mixed tables, whose 10,000 rows fit its caps whole.
var scopeFiles = map[string]string{
	"default": `{
  "name": "bench",
  "database": {"url_env": "AIRLOCK_DATABASE_URL"},
  "read": {"tables": {"public.customers": {}, "public.orders": {}, "public.big": {}}}
}
`,
	"max": `{
  "name": "bench-max",
  "database": {"url_env": "AIRLOCK_DATABASE_URL"},
  "read": {
    "tables": {"public.big": {}, "public.wide": {}, "public.mixed": {}},
    "max_rows": 100000,
    "max_bytes": 67108864,
    "statement_timeout_ms": 60000
  }
}
`,
}

// benchEnv is what every measurement needs: the binary, the cluster, the
// scope files and the URLs.
type benchEnv struct {
	bin      string
	cluster  *pgcluster.Cluster
	dir      string            // temporary directory for scope files
	scopes   map[string]string // "default", "max" → scope file path
	adminURL string            // superuser: raw pgx figures, setup
	agentURL string            // the login role airlock serve runs as
	peerURL  string            // the login the peer servers run as
	peersDir string            // bench/peers, when the peers are measured
	raw      *pgxpool.Pool     // raw pgx, as the superuser
	// txSetup is the preamble query_readonly sends under the default
	// scope, for the "airlock's transaction sent with pgx" floor.
	txSetup []string
	opt     options
}

func (e *benchEnv) close() {
	if e.raw != nil {
		e.raw.Close()
	}
	if e.cluster != nil {
		if err := e.cluster.Stop(); err != nil {
			progress("%v", err)
		}
	}
	os.RemoveAll(e.dir)
}

// airlockBinary returns the binary to run: the given path, or a fresh
// build of ./cmd/airlock from this module.
func airlockBinary(ctx context.Context, bin string) (string, func(), error) {
	if bin != "" {
		abs, err := filepath.Abs(bin)
		if err != nil {
			return "", nil, err
		}
		if _, err := os.Stat(abs); err != nil {
			return "", nil, fmt.Errorf("-bin: %w", err)
		}
		return abs, func() {}, nil
	}
	root, err := moduleRoot(ctx)
	if err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp("", "airlock-bench-bin-")
	if err != nil {
		return "", nil, err
	}
	bin = filepath.Join(dir, "airlock")
	progress("building %s", bin)
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/airlock")
	build.Dir = root
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("build airlock: %w", err)
	}
	return bin, func() { os.RemoveAll(dir) }, nil
}

func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("find the module: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("run the driver inside the airlock module, or pass -bin")
	}
	return filepath.Dir(mod), nil
}

// setUp starts the cluster, seeds it, writes the scopes and compiles them
// to database roles for the login role.
func setUp(ctx context.Context, opt options, bin string) (_ *benchEnv, err error) {
	e := &benchEnv{bin: bin, opt: opt, scopes: map[string]string{}}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	t0 := time.Now()
	progress("starting a throwaway PostgreSQL")
	e.cluster, err = pgcluster.Start(ctx, pgcluster.Options{BinDir: opt.binDir, Settings: map[string]string{
		// Room for the 8-in-flight figure next to airlock's own pool.
		"max_connections": "60",
		"shared_buffers":  "256MB",
	}})
	if err != nil {
		return nil, err
	}
	if err := exec1(ctx, e.cluster.URL("postgres"), "CREATE DATABASE "+database); err != nil {
		return nil, err
	}
	e.adminURL = e.cluster.URL(database)
	e.agentURL = strings.Replace(e.adminURL, "://postgres@", "://"+loginRole+"@", 1)

	progress("seeding %d customers, %d orders and a %d-row table", customers, orderCustomers*ordersPerCustomer, opt.bigRows)
	seed := fmt.Sprintf(seedSQL, customers, orderCustomers, orderCustomers*ordersPerCustomer, opt.bigRows)
	if err := exec1(ctx, e.adminURL, seed); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	if err := exec1(ctx, e.adminURL, mixedSeedSQL); err != nil {
		return nil, fmt.Errorf("seed mixed: %w", err)
	}
	progress("seeding testdata/wide.sql (10,000 rows of every common type)")
	// public.wide is the tests' table of every common type (10,000 rows,
	// jsonb up to 10 KB): the same rows the value tests check, to profile
	// wide answers with -hold.
	wide, err := wideSeed(ctx)
	if err != nil {
		return nil, err
	}
	if err := exec1(ctx, e.adminURL, wide); err != nil {
		return nil, fmt.Errorf("seed testdata/wide.sql: %w", err)
	}
	// VACUUM cannot share the seed's implicit transaction. It sets the
	// visibility map, so the index scans are index-only where they can be.
	if err := exec1(ctx, e.adminURL, "VACUUM ANALYZE customers, orders, big, wide, mixed"); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	login := pgx.Identifier{loginRole}.Sanitize()
	if err := exec1(ctx, e.adminURL, "CREATE ROLE "+login+" LOGIN; GRANT CONNECT ON DATABASE "+database+" TO "+login); err != nil {
		return nil, err
	}

	if e.dir, err = os.MkdirTemp("", "airlock-bench-"); err != nil {
		return nil, err
	}
	for name, text := range scopeFiles {
		path := filepath.Join(e.dir, name+".json")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			return nil, err
		}
		e.scopes[name] = path
		if err := e.airlock(ctx, e.adminURL, "scope", "apply", "--scope", path, "--grant-to", loginRole, "--harden"); err != nil {
			return nil, err
		}
	}
	// The peers log in as a role that may read the tables and nothing
	// else, as a careful setup of theirs would.
	peer := pgx.Identifier{peerLoginRole}.Sanitize()
	if err := exec1(ctx, e.adminURL, "CREATE ROLE "+peer+" LOGIN; GRANT CONNECT ON DATABASE "+database+" TO "+peer+
		"; GRANT USAGE ON SCHEMA public TO "+peer+"; GRANT SELECT ON customers, orders, big, mixed TO "+peer); err != nil {
		return nil, err
	}
	e.peerURL = strings.Replace(e.adminURL, "://postgres@", "://"+peerLoginRole+"@", 1)
	def, err := scopes.Load(e.scopes["default"])
	if err != nil {
		return nil, err
	}
	e.txSetup = tools.ReadSetup(def.Read, def.ReadRole())
	e.raw, err = pgxpool.New(ctx, e.adminURL+"&pool_max_conns="+fmt.Sprint(opt.inflight))
	if err != nil {
		return nil, err
	}
	progress("set up in %v", time.Since(t0).Round(time.Millisecond))
	return e, nil
}

// wideSeed reads testdata/wide.sql from the module the driver runs in.
func wideSeed(ctx context.Context) (string, error) {
	root, err := moduleRoot(ctx)
	if err != nil {
		// -bin does not help here: the seed is a file of the module.
		return "", fmt.Errorf("seed testdata/wide.sql: run the driver inside the airlock module")
	}
	b, err := os.ReadFile(filepath.Join(root, "testdata", "wide.sql"))
	if err != nil {
		return "", fmt.Errorf("seed: %w", err)
	}
	return string(b), nil
}

// airlock runs a one-shot airlock command with url in the environment.
func (e *benchEnv) airlock(ctx context.Context, url string, args ...string) error {
	cmd := exec.CommandContext(ctx, e.bin, args...)
	cmd.Env = append(os.Environ(), urlEnv+"="+url)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("airlock %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// exec1 runs a script of our own (not agent SQL) over the simple protocol,
// which runs several statements in one round trip.
func exec1(ctx context.Context, url, sql string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql); err != nil {
		return err
	}
	return nil
}

// machine describes where the figures were measured.
type machine struct {
	cpu      string
	cores    int
	memory   string
	postgres string
	goVer    string
	binSize  int64
}

func describeMachine(ctx context.Context, bin string, e *benchEnv) machine {
	m := machine{cores: runtime.NumCPU(), goVer: runtime.Version(), cpu: "unknown", memory: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
				var kib int64
				fmt.Sscan(f[1], &kib)
				m.memory = fmt.Sprintf("%.1f GiB", float64(kib)/(1<<20))
			}
		}
	}
	_ = e.raw.QueryRow(ctx, "SELECT pg_catalog.version()").Scan(&m.postgres)
	if i := strings.Index(m.postgres, " on "); i > 0 {
		m.postgres = m.postgres[:i]
	}
	if fi, err := os.Stat(bin); err == nil {
		m.binSize = fi.Size()
	}
	return m
}

// tail keeps the last max bytes written to it: a server's stderr, quoted
// when something fails.
type tail struct {
	max int
	mu  sync.Mutex
	buf bytes.Buffer
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(p)
	if over := t.buf.Len() - t.max; over > 0 {
		t.buf.Next(over)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.String()
}
