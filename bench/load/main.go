// Command load measures airlock the way an agent host uses it: the built
// binary, `airlock serve` over stdio, driven by mcp-go's client, against a
// throwaway PostgreSQL cluster it starts and seeds itself. Every airlock
// figure sits next to the raw pgx figure for the same SQL, measured in the
// same run against the same cluster, so that the ratio holds even when the
// machine's speed does not.
//
// It measures: p50/p99 latency of a point query and a 100-row query
// (sequential calls after a warm-up); calls per second with several
// requests in flight on one stdio session; cold start to first result
// (exec of `airlock serve` to the first query_readonly answer), with the
// startup steps timed one by one in a child process; and SELECT * on a
// 5,000,000-row table under the default caps and under the largest caps a
// scope allows (time, bytes over stdio, peak RSS of the server).
//
//	go run ./bench/load -out bench/results/load.md
//
// It prints a markdown report and writes it to -out when given.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"time"
)

// options are the driver's flags.
type options struct {
	calls    int
	warmup   int
	inflight int
	starts   int
	bigRows  int
	bigRuns  int
	bin      string
	out      string
	binDir   string
	hold     bool
	only     string
	// peers: measure the peer MCP servers side by side (bench/peers).
	peers       bool
	peerRSSMiB  int
	peerTimeout time.Duration
}

func main() {
	if os.Getenv(probeEnv) != "" {
		// A child started by measureStartupSteps: time serve's startup
		// steps in a fresh process and print them.
		os.Exit(runProbe())
	}
	var opt options
	flag.IntVar(&opt.calls, "calls", 2000, "measured calls per latency and throughput figure")
	flag.IntVar(&opt.warmup, "warmup", 200, "calls before each latency figure that are not measured")
	flag.IntVar(&opt.inflight, "inflight", 8, "requests in flight for the throughput figure")
	flag.IntVar(&opt.starts, "starts", 10, "server starts for the cold-start figure (median)")
	flag.IntVar(&opt.bigRows, "big-rows", 5_000_000, "rows in the big table for SELECT *")
	flag.IntVar(&opt.bigRuns, "big-runs", 5, "SELECT * calls per cap setting (median)")
	flag.StringVar(&opt.bin, "bin", "", "airlock binary (default: go build ./cmd/airlock into a temporary directory)")
	flag.StringVar(&opt.out, "out", "", "also write the markdown report to this file")
	flag.StringVar(&opt.binDir, "pg-bin", "", "directory holding initdb, pg_ctl and postgres (default: found on PATH or under /usr/lib/postgresql)")
	flag.BoolVar(&opt.hold, "hold", false, "set up, print the URLs and scope files, and wait for an interrupt instead of measuring (to profile by hand)")
	flag.StringVar(&opt.only, "only", "", "run only these measurements, comma-separated: latency, throughput, cold, startup, big, peers")
	_, installed := peersInstalled(context.Background())
	flag.BoolVar(&opt.peers, "peers", installed, "also measure the peer MCP servers side by side (default: on when "+peersDir+"/node_modules is installed)")
	flag.IntVar(&opt.peerRSSMiB, "peer-rss-limit", 4096, "MiB: the memory watchdog kills a server whose RSS passes this during SELECT * on the big table")
	flag.DurationVar(&opt.peerTimeout, "peer-timeout", 3*time.Minute, "how long SELECT * on the big table may take per server before it is killed")
	flag.Parse()
	if opt.calls < 1 || opt.inflight < 1 || opt.starts < 1 || opt.bigRuns < 1 || opt.bigRows < 1 {
		fmt.Fprintln(os.Stderr, "load: -calls, -inflight, -starts, -big-runs and -big-rows must be at least 1")
		os.Exit(2)
	}
	onlyPeers := slices.Contains(strings.Split(opt.only, ","), "peers")
	if !installed && (opt.peers || onlyPeers || !flagSet("peers")) {
		msg := "the peer MCP servers are not installed (" + peersDir + "/node_modules): run `" + peersInstall + "` (needs node and npm)"
		if opt.peers || onlyPeers {
			fmt.Fprintln(os.Stderr, "load: -peers: "+msg)
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "load: "+msg+" to measure them side by side; -peers=false silences this")
	}
	if onlyPeers {
		opt.peers = true
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, opt); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, opt options) error {
	started := time.Now()
	bin, cleanup, err := airlockBinary(ctx, opt.bin)
	if err != nil {
		return err
	}
	defer cleanup()

	env, err := setUp(ctx, opt, bin)
	if err != nil {
		return err
	}
	defer env.close()
	if opt.peers {
		env.peersDir, _ = peersInstalled(ctx)
	}

	if opt.hold {
		fmt.Printf("binary: %s\nadmin URL: %s\nagent URL (%s): %s\nscopes: %v\nwaiting for an interrupt\n",
			bin, env.adminURL, urlEnv, env.agentURL, env.scopes)
		<-ctx.Done()
		return nil
	}
	r := &report{opt: opt, machine: describeMachine(ctx, bin, env), loadStart: loadAverage()}
	steps := []struct {
		name string
		fn   func(context.Context, *benchEnv, *report) error
	}{
		{"latency", measureLatency},
		{"throughput", measureThroughput},
		{"cold", measureColdStart},
		{"startup", measureStartupSteps},
		{"big", measureBigTable},
		{"peers", measurePeers},
	}
	for _, s := range steps {
		if opt.only != "" && !slices.Contains(strings.Split(opt.only, ","), s.name) {
			continue
		}
		if s.name == "peers" && !opt.peers {
			continue
		}
		t0 := time.Now()
		progress("measuring %s", s.name)
		if err := s.fn(ctx, env, r); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		progress("  done in %v", time.Since(t0).Round(time.Millisecond))
	}
	r.total = time.Since(started)
	text := r.markdown()
	fmt.Print(text)
	if opt.out != "" {
		if err := os.WriteFile(opt.out, []byte(text), 0o644); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	}
	return nil
}

// flagSet reports whether the flag was given on the command line.
func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// progress reports on stderr, so that stdout holds only the report.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "load: "+format+"\n", args...)
}
