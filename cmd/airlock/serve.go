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

// serveOptions are serve's flags, as serveFlags defines them.
type serveOptions struct {
	scope, httpAddr, tlsCert, tlsKey string
	allowOwner                       bool
	origins                          stringList
	rate                             float64
	burst, inFlight                  int
	idle                             time.Duration
}

// serveFlags defines serve's flags: cmdServe parses with it and the help
// lists what it defines.
func serveFlags(fs *flag.FlagSet) *serveOptions {
	o := &serveOptions{}
	fs.StringVar(&o.scope, "scope", "", "the scope `FILE` (JSON): the tables, columns and writes the agent gets")
	fs.BoolVar(&o.allowOwner, "allow-owner", false, "start even when the login role is a superuser or owns the scope's tables (development only)")
	fs.StringVar(&o.httpAddr, "http", "", "serve MCP over Streamable HTTP on `ADDR` (e.g. 127.0.0.1:8765) instead of stdio; needs "+httpTokenEnv)
	fs.Var(&o.origins, "allow-origin", "with --http: a browser `ORIGIN` (scheme://host[:port]) allowed to call airlock; repeatable")
	fs.Float64Var(&o.rate, "http-rate", 20, "with --http: `N` requests per second allowed per token")
	fs.IntVar(&o.burst, "http-burst", 40, "with --http: a burst of `N` requests allowed per token")
	fs.IntVar(&o.inFlight, "http-max-in-flight", 8, "with --http: `N` concurrent requests allowed per token")
	fs.DurationVar(&o.idle, "http-session-idle", 30*time.Minute, "with --http: end an MCP session idle for `DURATION` (such as 30m or 2h)")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "with --http: serve HTTPS with the certificate in `FILE` (PEM)")
	fs.StringVar(&o.tlsKey, "tls-key", "", "with --http: the certificate's private key, in `FILE` (PEM)")
	return o
}

func cmdServe(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := mustLookup("serve")
	fs := c.flagSet()
	o := serveFlags(fs)
	if _, err := c.parse(fs, args, stdout, stderr); err != nil {
		return err
	}
	var httpCfg *server.HTTPConfig
	if o.httpAddr != "" {
		httpCfg = &server.HTTPConfig{
			Addr: o.httpAddr, Tokens: httpTokens(os.Getenv(httpTokenEnv)), AllowedOrigins: o.origins,
			RatePerSecond: o.rate, Burst: o.burst, MaxInFlight: o.inFlight, SessionIdleTTL: o.idle,
			TLSCert: o.tlsCert, TLSKey: o.tlsKey,
		}
		// Refuse before touching the database: a shared server without a
		// token must never come up, not even for a moment.
		if err := httpCfg.Check(); err != nil {
			fmt.Fprintf(stderr, "airlock serve --http: %v\n", err)
			return errReported
		}
	} else if len(o.origins) > 0 || o.tlsCert != "" || o.tlsKey != "" {
		return c.usageError(stderr, "--allow-origin, --tls-cert and --tls-key need --http")
	}
	if o.scope == "" {
		return c.usageError(stderr, "--scope FILE is required")
	}
	scope, err := scopes.Load(o.scope)
	if err != nil {
		fmt.Fprint(stderr, scopeErrorText(o.scope, err))
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

	srv, err := server.New(ctx, server.Config{Scope: scope, Pool: pool, Logger: logger, AllowOwner: o.allowOwner, ScopeFile: shellQuote(o.scope)})
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	defer srv.Close()
	if httpCfg != nil {
		return srv.ListenHTTP(ctx, *httpCfg)
	}
	return srv.ServeStdio(ctx, stdin, stdout)
}

// shellQuote returns s as one word a POSIX shell reads back as s, so that a
// suggested command can be pasted as printed.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-./+=:@%,", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
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
