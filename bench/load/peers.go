package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// The peers: other MCP servers for PostgreSQL, measured beside airlock in
// the same run, on the same database, with the same SQL (issue 16). They
// are npm packages pinned in bench/peers/package.json and its lock file,
// installed by `npm ci --prefix bench/peers` (bench/run.sh does it), and
// started as `node <package>/dist/index.js ...` directly, not through npx,
// so that the process the driver reads /proc of is the server itself.
const (
	peersDir      = "bench/peers"
	peersInstall  = "npm ci --prefix bench/peers --no-audit --no-fund"
	peerLoginRole = "airlock_bench_peer"

	// The side-by-side queries. The peers take no bind parameters, so
	// every server, airlock too, gets the literal SQL.
	peerPointSQL = "SELECT * FROM customers WHERE id = %d"
	mixedSQL     = "SELECT * FROM mixed LIMIT 10000"
	mixedRows    = 10_000
	// bigKeepMax: SELECT * on the big table is counted, not kept.
	bigKeepMax = 1 << 20
)

// mcpServer is one server of the side-by-side comparison.
type mcpServer struct {
	key   string // airlock, server-postgres, dbhub, dbhub-ro
	label string // as the report's columns say
	tool  string
	// cmd builds the command; scope is airlock's scope ("default" or
	// "max"), which the peers have no notion of.
	cmd func(scope string) *exec.Cmd
}

// peersInstalled reports whether bench/peers/node_modules holds both
// packages, and where bench/peers is.
func peersInstalled(ctx context.Context) (string, bool) {
	root, err := moduleRoot(ctx)
	if err != nil {
		return "", false
	}
	dir := filepath.Join(root, peersDir)
	for _, pkg := range []string{"@modelcontextprotocol/server-postgres", "@bytebase/dbhub"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg, "dist", "index.js")); err != nil {
			return dir, false
		}
	}
	return dir, true
}

// packageVersion is the version in an installed package's package.json.
func packageVersion(dir, pkg string) string {
	b, err := os.ReadFile(filepath.Join(dir, "node_modules", pkg, "package.json"))
	if err != nil {
		return "?"
	}
	var m struct {
		Version string `json:"version"`
	}
	if json.Unmarshal(b, &m) != nil || m.Version == "" {
		return "?"
	}
	return m.Version
}

// sideServers are airlock and the three peer setups, in the report's
// column order. airlock runs as its least-privilege login with the
// driver's scopes; the peers log in as a role with SELECT on the tables.
func (e *benchEnv) sideServers() ([]mcpServer, error) {
	dir := e.peersDir
	sp := filepath.Join(dir, "node_modules", "@modelcontextprotocol", "server-postgres", "dist", "index.js")
	dh := filepath.Join(dir, "node_modules", "@bytebase", "dbhub", "dist", "index.js")
	// dbhub 1.4 has no --readonly flag any more: read-only is a tool
	// setting in its TOML configuration.
	toml := filepath.Join(e.dir, "dbhub-readonly.toml")
	conf := fmt.Sprintf("[[sources]]\nid = \"default\"\ndsn = %q\n\n[[tools]]\nname = \"execute_sql\"\nsource = \"default\"\nreadonly = true\n", e.peerURL)
	if err := os.WriteFile(toml, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	node := func(args ...string) func(string) *exec.Cmd {
		return func(string) *exec.Cmd {
			cmd := exec.Command("node", args...)
			// No .env or dbhub.toml of anyone's is picked up from here.
			cmd.Dir = e.dir
			return cmd
		}
	}
	spv := packageVersion(dir, "@modelcontextprotocol/server-postgres")
	dhv := packageVersion(dir, "@bytebase/dbhub")
	return []mcpServer{
		{key: "airlock", label: "airlock", tool: "query_readonly", cmd: func(scope string) *exec.Cmd {
			cmd := exec.Command(e.bin, "serve", "--scope", e.scopes[scope])
			cmd.Env = append(os.Environ(), urlEnv+"="+e.agentURL)
			return cmd
		}},
		{key: "server-postgres", label: "server-postgres " + spv, tool: "query", cmd: node(sp, e.peerURL)},
		{key: "dbhub", label: "dbhub " + dhv, tool: "execute_sql", cmd: node(dh, "--transport", "stdio", "--dsn", e.peerURL)},
		{key: "dbhub-ro", label: "dbhub " + dhv + " read-only", tool: "execute_sql", cmd: node(dh, "--transport", "stdio", "--config", toml)},
	}, nil
}

// answerRows counts the rows of a server's answer, each server's text
// format read as it is.
func answerRows(key string, a toolAnswer) (int, error) {
	switch key {
	case "airlock":
		rows, _, _, ok := airlockTextRows(a.text)
		if !ok {
			return 0, fmt.Errorf("airlock: no rows markers in the text: %.200q", a.text)
		}
		return rows, nil
	case "server-postgres":
		var rows []json.RawMessage
		if err := json.Unmarshal([]byte(a.text), &rows); err != nil {
			return 0, fmt.Errorf("server-postgres: text is not a JSON array: %w", err)
		}
		return len(rows), nil
	default: // dbhub
		var m struct {
			Success bool `json:"success"`
			Data    struct {
				Statements []struct {
					Rows []json.RawMessage `json:"rows"`
				} `json:"statements"`
			} `json:"data"`
		}
		if err := json.Unmarshal([]byte(a.text), &m); err != nil {
			return 0, fmt.Errorf("dbhub: text is not JSON: %w", err)
		}
		if !m.Success || len(m.Data.Statements) != 1 {
			return 0, fmt.Errorf("dbhub: unexpected answer: %.300s", a.text)
		}
		return len(m.Data.Statements[0].Rows), nil
	}
}

// airlockTextRows reads airlock's text content: between a `<rows-TOKEN>`
// line and a `</rows-TOKEN>` line, the column names as one JSON array, then
// one JSON array per row. It returns the number of rows and their bytes,
// each row's newline included, and the bytes of the column line; the rest
// of the text is the answer's fixed part. Lenient on purpose: any line
// starting with "<rows" opens, "</rows" closes. If the format changes,
// this is the one function to adapt.
func airlockTextRows(text string) (rows, rowBytes, columnBytes int, ok bool) {
	in, columns := false, false
	for _, line := range strings.SplitAfter(text, "\n") {
		l := strings.TrimRight(line, "\n")
		switch {
		case !in && strings.HasPrefix(l, "<rows"):
			in, ok = true, true
		case in && strings.HasPrefix(l, "</rows"):
			return rows, rowBytes, columnBytes, true
		case in && !columns:
			columns, columnBytes = true, len(line)
		case in:
			rows++
			rowBytes += len(line)
		}
	}
	return rows, rowBytes, columnBytes, ok
}

// sideFigures are one server's figures in the side-by-side table.
type sideFigures struct {
	key, label string
	lat        dist
	cpuPerCall time.Duration // -1 when not measured
	callsPerS  float64
	spawn      dist
	oneRow     int64 // bytes of the one-row answer line
	oneRowText int   // bytes of its text content
	mixedLine  int64 // bytes of the 10,000-row answer line
	mixedText  int   // bytes of its text content
	mixedRows  int
	// airlock's text content minus the rows' lines, for the one-row and
	// the 10,000-row answers.
	fixedOne, fixedMixed int
	mixedRowBytes        int // airlock: the rows' lines in the text
	big                  bigSide
	err                  string // a figure that failed, said once
}

// bigSide is SELECT * FROM big through one fresh server.
type bigSide struct {
	measured bool
	fail     string
	d        time.Duration
	bytes    int64
	hwmKiB   int64
	rows     string // as the answer says, when it says
}

// peerReport is the side-by-side part of the report.
type peerReport struct {
	servers           []*sideFigures // airlock, peers..., raw pgx last
	rowToJSON         float64        // bytes per row, PostgreSQL's row_to_json
	airlockBigDefault bigSide
	node              string
	cpuCalls          int
}

// slot is one participant of an interleaved rotation: an MCP session or
// raw pgx.
type slot struct {
	fig  *sideFigures
	srv  *mcpServer // nil for raw pgx
	proc *rawProc
}

func (s slot) point(ctx context.Context, e *benchEnv, id int64) error {
	sql := fmt.Sprintf(peerPointSQL, id)
	if s.srv == nil {
		return rawSimple(ctx, e, sql, 1)
	}
	a, _, err := s.proc.callTool(ctx, s.srv.tool, sql)
	if err != nil {
		return err
	}
	if n, err := answerRows(s.srv.key, a); err != nil || n != 1 {
		return fmt.Errorf("%s: point query: want 1 row, got %d (%v)", s.fig.label, n, err)
	}
	return nil
}

// rawSimple runs literal SQL over pgx's simple protocol, as the peers'
// node-postgres does for a query without parameters.
func rawSimple(ctx context.Context, e *benchEnv, sql string, want int) error {
	n, err := rawRows(ctx, e, sql, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return err
	}
	if n != want {
		return fmt.Errorf("raw pgx: want %d rows, got %d", want, n)
	}
	return nil
}

// measurePeers runs the side-by-side figures: airlock, the peers and raw
// pgx, with calls interleaved across them so that the machine's noise
// falls on all alike.
func measurePeers(ctx context.Context, e *benchEnv, r *report) error {
	servers, err := e.sideServers()
	if err != nil {
		return err
	}
	pr := &peerReport{}
	if out, err := exec.CommandContext(ctx, "node", "--version").Output(); err == nil {
		pr.node = "node " + strings.TrimSpace(string(out))
	}
	r.peers = pr
	var slots []slot
	for i := range servers {
		s := &servers[i]
		fig := &sideFigures{key: s.key, label: s.label, cpuPerCall: -1}
		pr.servers = append(pr.servers, fig)
		p, err := startRaw(ctx, s.label, s.cmd("default"), defaultKeepMax)
		if err != nil {
			return err
		}
		defer p.close()
		slots = append(slots, slot{fig: fig, srv: s, proc: p})
	}
	rawFig := &sideFigures{key: "raw", label: "raw pgx", cpuPerCall: -1}
	pr.servers = append(pr.servers, rawFig)
	slots = append(slots, slot{fig: rawFig})

	progress("  side by side: point query, %d calls per server, interleaved", e.opt.calls)
	if err := sideLatency(ctx, e, slots, pr); err != nil {
		return err
	}
	progress("  side by side: %d in flight", e.opt.inflight)
	if err := sideThroughput(ctx, e, slots); err != nil {
		return err
	}
	progress("  side by side: answer bytes")
	if err := sideBytes(ctx, e, servers, slots, pr); err != nil {
		return err
	}
	progress("  side by side: %d spawns per server", e.opt.starts)
	if err := sideSpawn(ctx, e, servers, pr); err != nil {
		return err
	}
	progress("  side by side: SELECT * FROM big (%s rows), one fresh server each", thousands(int64(e.opt.bigRows)))
	return sideBig(ctx, e, servers, pr)
}

func sideLatency(ctx context.Context, e *benchEnv, slots []slot, pr *peerReport) error {
	n := len(slots)
	for i := 0; i < e.opt.warmup*n; i++ {
		if err := slots[i%n].point(ctx, e, pointID(i/n)); err != nil {
			return err
		}
	}
	cpu0 := make([]time.Duration, n)
	for j, s := range slots {
		if s.proc != nil {
			cpu0[j], _ = cpuTime(s.proc.pid())
		}
	}
	lat := make([][]time.Duration, n)
	for i := 0; i < e.opt.calls*n; i++ {
		s := slots[i%n]
		t0 := time.Now()
		if err := s.point(ctx, e, pointID(e.opt.warmup+i/n)); err != nil {
			return err
		}
		lat[i%n] = append(lat[i%n], time.Since(t0))
	}
	for j, s := range slots {
		s.fig.lat = newDist(lat[j])
		if s.proc != nil {
			if c, err := cpuTime(s.proc.pid()); err == nil {
				s.fig.cpuPerCall = (c - cpu0[j]) / time.Duration(e.opt.calls)
			}
		}
	}
	pr.cpuCalls = e.opt.calls
	return nil
}

// sideThroughput runs each server with inflight calls in flight on its one
// session, in rounds: each round gives every server a share of the calls,
// in a rotating order.
func sideThroughput(ctx context.Context, e *benchEnv, slots []slot) error {
	const rounds = 4
	per := max(1, e.opt.calls/rounds)
	total := make([]time.Duration, len(slots))
	for j, s := range slots {
		if _, err := concurrently(ctx, e.opt.inflight, 0, e.opt.warmup, func(ctx context.Context, i int) error {
			return s.point(ctx, e, pointID(i*13+j))
		}); err != nil {
			return err
		}
	}
	for round := 0; round < rounds; round++ {
		for k := range slots {
			j := (k + round) % len(slots)
			s := slots[j]
			cps, err := concurrently(ctx, e.opt.inflight, 0, per, func(ctx context.Context, i int) error {
				return s.point(ctx, e, pointID(round*per+i))
			})
			if err != nil {
				return err
			}
			total[j] += time.Duration(float64(per) / cps * float64(time.Second))
		}
	}
	for j, s := range slots {
		s.fig.callsPerS = float64(per*rounds) / total[j].Seconds()
	}
	return nil
}

// sideBytes measures the one-row answer on the open sessions and the
// 10,000-row answer, airlock's through a server on the max scope (the
// default caps stop at 500 rows and 1 MiB).
func sideBytes(ctx context.Context, e *benchEnv, servers []mcpServer, slots []slot, pr *peerReport) error {
	var sum int64
	if err := e.raw.QueryRow(ctx, "SELECT sum(octet_length(row_to_json(t)::text)) FROM ("+mixedSQL+") t").Scan(&sum); err != nil {
		return err
	}
	pr.rowToJSON = float64(sum) / mixedRows
	for _, s := range slots {
		if s.srv == nil {
			continue
		}
		a, ln, err := s.proc.callTool(ctx, s.srv.tool, fmt.Sprintf(peerPointSQL, 42))
		if err != nil {
			return err
		}
		s.fig.oneRow, s.fig.oneRowText = ln.n, len(a.text)
		if s.srv.key == "airlock" {
			_, rb, cb, _ := airlockTextRows(a.text)
			s.fig.fixedOne = len(a.text) - rb - cb
		}
		p := s.proc
		if s.srv.key == "airlock" {
			if p, err = startRaw(ctx, s.srv.label, s.srv.cmd("max"), defaultKeepMax); err != nil {
				return err
			}
		}
		a, ln, err = p.callTool(ctx, s.srv.tool, mixedSQL)
		if p != s.proc {
			p.close()
		}
		if err != nil {
			return err
		}
		rows, err := answerRows(s.srv.key, a)
		if err != nil {
			return err
		}
		if rows != mixedRows {
			return fmt.Errorf("%s: %s: %d rows, want %d", s.fig.label, mixedSQL, rows, mixedRows)
		}
		s.fig.mixedLine, s.fig.mixedText, s.fig.mixedRows = ln.n, len(a.text), rows
		if s.srv.key == "airlock" {
			_, rb, cb, _ := airlockTextRows(a.text)
			s.fig.mixedRowBytes = rb
			s.fig.fixedMixed = len(a.text) - rb - cb
		}
	}
	return nil
}

// sideSpawn times exec → first successful point query result, each server
// in turn, a fresh process every time; raw pgx connects afresh.
func sideSpawn(ctx context.Context, e *benchEnv, servers []mcpServer, pr *peerReport) error {
	n := len(servers) + 1
	samples := make([][]time.Duration, n)
	for k := 0; k < e.opt.starts; k++ {
		for m := 0; m < n; m++ {
			j := (m + k) % n
			id := pointID(k*n + j)
			if j == len(servers) {
				t0 := time.Now()
				conn, err := pgx.Connect(ctx, e.peerURL)
				if err != nil {
					return err
				}
				var name string
				err = conn.QueryRow(ctx, "SELECT name FROM customers WHERE id = "+strconv.FormatInt(id, 10), pgx.QueryExecModeSimpleProtocol).Scan(&name)
				samples[j] = append(samples[j], time.Since(t0))
				conn.Close(ctx)
				if err != nil {
					return err
				}
				continue
			}
			s := &servers[j]
			t0 := time.Now()
			p, err := startRaw(ctx, s.label, s.cmd("default"), defaultKeepMax)
			if err != nil {
				return err
			}
			err = slot{fig: pr.servers[j], srv: s, proc: p}.point(ctx, e, id)
			d := time.Since(t0)
			p.close()
			if err != nil {
				return err
			}
			samples[j] = append(samples[j], d)
		}
	}
	for j := range samples {
		pr.servers[j].spawn = newDist(samples[j])
	}
	return nil
}

var (
	rowCountPattern = regexp.MustCompile(`"row_count":\s*(\d+)`)
	dbhubCount      = regexp.MustCompile(`\\"count\\":\s*(\d+)`)
)

// sideBig runs SELECT * FROM big once per server, each in a fresh process
// with a timeout and a memory watchdog: a peer that fails or runs out of
// memory is a figure, not the end of the run.
func sideBig(ctx context.Context, e *benchEnv, servers []mcpServer, pr *peerReport) error {
	limit := int64(e.opt.peerRSSMiB) << 10
	one := func(s *mcpServer, scope string) bigSide {
		b := bigSide{measured: true}
		p, err := startRaw(ctx, s.label, s.cmd(scope), bigKeepMax)
		if err != nil {
			b.fail = err.Error()
			return b
		}
		stop := make(chan struct{})
		peak := p.watchMemory(limit, stop)
		cctx, cancel := context.WithTimeout(ctx, e.opt.peerTimeout)
		t0 := time.Now()
		a, ln, err := p.callTool(cctx, s.tool, bigSQL)
		b.d = time.Since(t0)
		timedOut := cctx.Err() == context.DeadlineExceeded
		cancel()
		b.bytes = ln.n
		b.hwmKiB, _ = procStatusKiB(p.pid(), "VmHWM:")
		close(stop)
		seen := <-peak
		if err != nil {
			_ = p.cmd.Process.Kill()
			b.fail = err.Error()
			if timedOut && ctx.Err() == nil {
				b.fail = fmt.Sprintf("no answer within %v (killed)", e.opt.peerTimeout)
			}
		}
		// Not rusage's maxrss: Linux carries the forked driver's peak
		// across the exec into it.
		p.close()
		b.hwmKiB = max(b.hwmKiB, seen)
		switch {
		case b.fail != "":
		case ln.body != nil:
			if n, err := answerRows(s.key, a); err == nil {
				b.rows = thousands(int64(n))
			}
		case s.key == "airlock":
			if m := rowCountPattern.FindAllSubmatch(ln.tail, -1); len(m) > 0 {
				n, _ := strconv.ParseInt(string(m[len(m)-1][1]), 10, 64)
				b.rows = thousands(n)
			}
		case strings.HasPrefix(s.key, "dbhub"):
			if m := dbhubCount.FindAllSubmatch(ln.tail, -1); len(m) > 0 {
				n, _ := strconv.ParseInt(string(m[len(m)-1][1]), 10, 64)
				b.rows = thousands(n)
			}
		}
		if b.fail != "" {
			progress("    %s: fails: %s", s.label, b.fail)
		} else {
			progress("    %s: %v, %s bytes, peak RSS %s", s.label, b.d.Round(time.Millisecond), thousands(b.bytes), mib(b.hwmKiB))
		}
		return b
	}
	for j := range servers {
		s := &servers[j]
		scope := "default"
		if s.key == "airlock" {
			pr.airlockBigDefault = one(s, "default")
			scope = "max"
		}
		pr.servers[j].big = one(s, scope)
	}
	d, bytes, err := rawFetch(ctx, e, bigSQL, 1)
	if err != nil {
		return err
	}
	raw := pr.servers[len(pr.servers)-1]
	raw.big = bigSide{measured: true, d: d.p50(), bytes: bytes, rows: thousands(int64(e.opt.bigRows))}
	return nil
}
