package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/airlock-dev/airlock/scopes"
	"github.com/airlock-dev/airlock/server"
)

func cmdServe(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	scopePath := fs.String("scope", "", "scope file (JSON)")
	allowOwner := fs.Bool("allow-owner", false, "start even when the login role is a superuser or owns the scope's tables (development only)")
	httpAddr := fs.String("http", "", "serve MCP over Streamable HTTP on this address (e.g. 127.0.0.1:8765) instead of stdio; needs "+httpTokenEnv)
	var origins stringList
	fs.Var(&origins, "allow-origin", "with --http: a browser origin (scheme://host[:port]) allowed to call airlock; repeatable")
	rate := fs.Float64("http-rate", 20, "with --http: requests per second allowed per token")
	burst := fs.Int("http-burst", 40, "with --http: request burst allowed per token")
	inFlight := fs.Int("http-max-in-flight", 8, "with --http: concurrent requests allowed per token")
	idle := fs.Duration("http-session-idle", 30*time.Minute, "with --http: end an MCP session idle this long")
	tlsCert := fs.String("tls-cert", "", "with --http: serve HTTPS with this certificate (PEM)")
	tlsKey := fs.String("tls-key", "", "with --http: the certificate's private key (PEM)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	var httpCfg *server.HTTPConfig
	if *httpAddr != "" {
		httpCfg = &server.HTTPConfig{
			Addr: *httpAddr, Tokens: httpTokens(os.Getenv(httpTokenEnv)), AllowedOrigins: origins,
			RatePerSecond: *rate, Burst: *burst, MaxInFlight: *inFlight, SessionIdleTTL: *idle,
			TLSCert: *tlsCert, TLSKey: *tlsKey,
		}
		// Refuse before touching the database: a shared server without a
		// token must never come up, not even for a moment.
		if err := httpCfg.Check(); err != nil {
			fmt.Fprintf(stderr, "airlock serve --http: %v\n", err)
			return errReported
		}
	} else if len(origins) > 0 || *tlsCert != "" || *tlsKey != "" {
		fmt.Fprintln(stderr, "airlock serve: --allow-origin, --tls-cert and --tls-key need --http")
		return errUsage
	}
	if *scopePath == "" {
		fmt.Fprintln(stderr, "airlock serve: --scope FILE is required")
		return errUsage
	}
	scope, err := scopes.Load(*scopePath)
	if err != nil {
		fmt.Fprint(stderr, scopeErrorText(*scopePath, err))
		return errReported
	}
	logger := newLogger(stderr)
	pool, err := openPool(ctx, scope.URLEnv(), 8, map[string]string{
		// airlock's own catalog reads (list_tables, describe_table) must
		// not queue behind a prepared change's ACCESS EXCLUSIVE lock.
		"lock_timeout": "5000",
	})
	if err != nil {
		return err
	}
	defer pool.Close()

	srv, err := server.New(ctx, server.Config{Scope: scope, Pool: pool, Logger: logger, AllowOwner: *allowOwner})
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	defer srv.Close()
	if httpCfg != nil {
		return srv.ListenHTTP(ctx, *httpCfg)
	}
	return srv.ServeStdio(ctx, stdin, stdout)
}

// httpTokenEnv holds serve --http's bearer tokens: one, or several
// separated by commas (one per team or agent, each with its own limits).
const httpTokenEnv = "AIRLOCK_HTTP_TOKEN"

func httpTokens(v string) []string {
	var out []string
	for _, t := range strings.Split(v, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}
