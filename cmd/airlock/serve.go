package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlock-dev/airlock/doctor"
	"github.com/airlock-dev/airlock/internal/dbconn"
	"github.com/airlock-dev/airlock/reviewweb"
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
	localWrites                      bool
	urlFile, tokenFile               string
	reapInterval                     time.Duration
	review                           *reviewServeOptions
}

// serveFlags defines serve's flags: cmdServe parses with it and the help
// lists what it defines.
func serveFlags(fs *flag.FlagSet) *serveOptions {
	o := &serveOptions{}
	fs.StringVar(&o.scope, "scope", "", "the scope `FILE` (JSON): the tables, columns and writes the agent gets")
	fs.BoolVar(&o.allowOwner, "allow-owner", false, "start even when the login role is a superuser or owns the scope's tables (development only)")
	fs.StringVar(&o.httpAddr, "http", "", "be the service: serve MCP over Streamable HTTP on `ADDR` (127.0.0.1:8765, or unix:/path/to/socket) instead of stdio; needs "+httpTokenEnv+" or --http-token-file")
	fs.Var(&o.origins, "allow-origin", "with --http: a browser `ORIGIN` (scheme://host[:port]) allowed to call airlock; repeatable")
	fs.Float64Var(&o.rate, "http-rate", 20, "with --http: `N` requests per second allowed per token")
	fs.IntVar(&o.burst, "http-burst", 40, "with --http: a burst of `N` requests allowed per token")
	fs.IntVar(&o.inFlight, "http-max-in-flight", 8, "with --http: `N` concurrent requests allowed per token")
	fs.DurationVar(&o.idle, "http-session-idle", 30*time.Minute, "with --http: end an MCP session idle for `DURATION` (such as 30m or 2h)")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "with --http: serve HTTPS with the certificate in `FILE` (PEM)")
	fs.StringVar(&o.tlsKey, "tls-key", "", "with --http: the certificate's private key, in `FILE` (PEM)")
	fs.BoolVar(&o.localWrites, "local-writes", false, "over stdio: also list the write tools, with one login that reads and writes (a demo or a development database only: an agent with a shell can then write)")
	fs.StringVar(&o.urlFile, "database-url-file", "", "read the database URL from `FILE` (one line, readable by its owner only) instead of the environment: the service's credential, out of the agent's reach")
	fs.DurationVar(&o.reapInterval, "reap-interval", 30*time.Second, "how often to expire unreviewed changes and, over --http, end what agent logins left running, idle or prepared past the scope's limits")
	fs.StringVar(&o.tokenFile, "http-token-file", "", "with --http: read the bearer tokens from `FILE` (one a line, readable by its owner only) instead of "+httpTokenEnv)
	o.review = reviewServeFlags(fs)
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
		tokens := httpTokens(os.Getenv(httpTokenEnv))
		if o.tokenFile != "" {
			text, err := readSecretFile(o.tokenFile)
			if err != nil {
				fmt.Fprintf(stderr, "airlock serve --http: %v\n", err)
				return errReported
			}
			tokens = httpTokens(strings.ReplaceAll(text, "\n", ","))
		}
		if o.localWrites {
			return c.usageError(stderr, "--local-writes is for stdio; over --http the service always lists the write tools")
		}
		httpCfg = &server.HTTPConfig{
			Addr: o.httpAddr, Tokens: tokens, AllowedOrigins: o.origins,
			RatePerSecond: o.rate, Burst: o.burst, MaxInFlight: o.inFlight, SessionIdleTTL: o.idle,
			TLSCert: o.tlsCert, TLSKey: o.tlsKey,
		}
		// Refuse before touching the database: a shared server without a
		// token must never come up, not even for a moment.
		if err := httpCfg.Check(); err != nil {
			fmt.Fprintf(stderr, "airlock serve --http: %v\n", err)
			return errReported
		}
	} else if len(o.origins) > 0 || o.tlsCert != "" || o.tlsKey != "" || o.tokenFile != "" || o.review.any() {
		return c.usageError(stderr, "--allow-origin, --tls-cert, --tls-key, --http-token-file and the review page and notification flags need --http")
	}
	var reviewers []reviewweb.Reviewer
	if httpCfg != nil {
		var err error
		if reviewers, err = o.review.reviewers(newLogger(stderr)); err != nil {
			fmt.Fprintf(stderr, "airlock serve --http: %v\n", err)
			return errReported
		}
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
	params := map[string]string{
		// airlock's own catalog reads (list_tables, describe_table) must
		// not queue behind a prepared change's ACCESS EXCLUSIVE lock.
		"lock_timeout": "5000",
	}
	var pool *pgxpool.Pool
	if o.urlFile != "" {
		url, rerr := readSecretFile(o.urlFile)
		if rerr != nil {
			fmt.Fprintf(stderr, "airlock serve: %v\n", rerr)
			return errReported
		}
		pool, err = dbconn.Open(ctx, "the file "+o.urlFile, url, dbconn.Options{MaxConns: 8, Params: params})
	} else {
		pool, err = openPool(ctx, scope.URLEnv(), 8, params)
	}
	if err != nil {
		return err
	}
	defer pool.Close()

	// Which principal this process is (docs/architecture.md, Transports and sessions):
	// over HTTP the service; over stdio agent-side, holding the agent
	// login, unless --local-writes makes it one process that does both.
	as := doctor.AsAgent
	switch {
	case httpCfg != nil:
		as = doctor.AsService
	case o.localWrites:
		as = doctor.AsLocal
		if scope.Write != nil {
			logger.Warn("serve --local-writes: this process lists the write tools and its login reads and writes; an agent with a shell can read this login's URL from its configuration or this process's environment and write with psql. For a demo or a development database only: for anything that matters, run the service (airlock serve --http) and give the agent an agent login")
		}
	}
	srv, err := server.New(ctx, server.Config{Scope: scope, Pool: pool, Logger: logger, AllowOwner: o.allowOwner,
		ScopeFile: shellQuote(o.scope), As: as, ReapInterval: o.reapInterval})
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	defer srv.Close()
	if httpCfg != nil {
		if reviewers != nil {
			h, closeReview, err := openReviewPage(ctx, o.review, reviewers, httpCfg.Tokens,
				o.tlsCert != "" || strings.HasPrefix(o.review.publicURL, "https://"), logger)
			if err != nil {
				fmt.Fprintf(stderr, "airlock serve --http: %v\n", err)
				return errReported
			}
			defer closeReview()
			httpCfg.Review = h
		}
		base, err := newPublicBase(o.review, o.tlsCert != "")
		if err != nil {
			return c.usageError(stderr, "%s", err.Error())
		}
		httpCfg.Listening = base.listening
		stopNotify, err := startNotifications(ctx, o.review, scope, pool, base.String, logger)
		if err != nil {
			fmt.Fprintf(stderr, "airlock serve --http: %v\n", err)
			return errReported
		}
		defer stopNotify()
		return srv.ListenHTTP(ctx, *httpCfg)
	}
	return srv.ServeStdio(ctx, stdin, stdout)
}

// readSecretFile reads a credential file (a database URL, bearer tokens):
// its first non-empty lines, trimmed. A file others can read is refused: a
// credential in reach of another OS user is in reach of an agent running
// as one.
func readSecretFile(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%s can be read by other users (mode %04o): chmod 600 %s, so that only the service's own OS user can", path, fi.Mode().Perm(), shellQuote(path))
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return "", fmt.Errorf("%s is empty", path)
	}
	return strings.Join(lines, "\n"), nil
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
