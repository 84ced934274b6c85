package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlock-dev/airlock/audit"
	"github.com/airlock-dev/airlock/internal/dbconn"
	"github.com/airlock-dev/airlock/review"
	"github.com/airlock-dev/airlock/reviewweb"
	"github.com/airlock-dev/airlock/scopes"
	"github.com/airlock-dev/airlock/sqlguard"
	"github.com/airlock-dev/airlock/tools"
)

// Environment variables of the review page (docs/architecture.md, Reviewers).
const (
	reviewerTokensEnv = "AIRLOCK_REVIEWER_TOKENS"
	reviewURLEnv      = "AIRLOCK_REVIEW_DATABASE_URL"
	notifySecretEnv   = "AIRLOCK_NOTIFY_SECRET"
	reviewerTokenEnv  = "AIRLOCK_REVIEWER_TOKEN"
)

// reviewServeOptions are serve's flags for the review page and the
// notifications.
type reviewServeOptions struct {
	urlFile, tokensFile, publicURL, secretFile string
	webhooks                                   stringList
}

func reviewServeFlags(fs *flag.FlagSet) *reviewServeOptions {
	o := &reviewServeOptions{}
	fs.StringVar(&o.tokensFile, "reviewer-tokens-file", "", "with --http: serve the review page under /review/, for the reviewers named in `FILE` (NAME:TOKEN or NAME:sha256:HEX, one a line, readable by its owner only) instead of "+reviewerTokensEnv)
	fs.StringVar(&o.urlFile, "review-database-url-file", "", "with --http: the review page decides as the reviewer login whose URL is in `FILE` (readable by its owner only) instead of "+reviewURLEnv+"; never the service login")
	fs.StringVar(&o.publicURL, "public-url", "", "with --http: the `URL` reviewers reach this service at (https://airlock.example.com), for the links in notifications; default: the listen address")
	fs.Var(&o.webhooks, "notify-webhook", "with --http: POST a signed JSON event to `URL` on every new pending change, approval, decision, expiry and drift (slack:URL, or a hooks.slack.com URL, sends Slack's format); repeatable")
	fs.StringVar(&o.secretFile, "notify-secret-file", "", "with --notify-webhook: the HMAC-SHA256 signing secret, in `FILE` (readable by its owner only) instead of "+notifySecretEnv)
	return o
}

// enabled reports whether any review-page or notification flag is set.
func (o *reviewServeOptions) any() bool {
	return o.urlFile != "" || o.tokensFile != "" || o.publicURL != "" || o.secretFile != "" || len(o.webhooks) > 0
}

// reviewers reads the reviewer tokens, from the file or the environment;
// none means the review page is off.
func (o *reviewServeOptions) reviewers(logger *slog.Logger) ([]reviewweb.Reviewer, error) {
	text := os.Getenv(reviewerTokensEnv)
	where := reviewerTokensEnv
	if o.tokensFile != "" {
		t, err := readSecretFile(o.tokensFile)
		if err != nil {
			return nil, err
		}
		text, where = t, o.tokensFile
	}
	if strings.TrimSpace(text) == "" {
		if o.urlFile != "" || os.Getenv(reviewURLEnv) != "" {
			return nil, errors.New("a review database URL is set but no reviewer tokens: set " + reviewerTokensEnv + "=\"alice:TOKEN,bob:TOKEN\" or --reviewer-tokens-file FILE")
		}
		return nil, nil
	}
	rs, err := reviewweb.ParseReviewers(text)
	if err != nil {
		return nil, fmt.Errorf("reviewer tokens in %s: %w", where, err)
	}
	if o.tokensFile != "" {
		for _, r := range rs {
			if !r.Hashed() {
				logger.Warn("the reviewer tokens file holds a token itself; keep only its hash there: NAME:sha256:HEX (printf %s TOKEN | sha256sum)", "file", o.tokensFile, "reviewer", r.Name)
			}
		}
	}
	return rs, nil
}

// openReviewPage connects the review page's reviewer login and returns the
// page's handler; close releases it. The login must be a reviewer's: the
// service login, an agent login, or one that holds no reviewer's rights is
// refused before anything is served.
func openReviewPage(ctx context.Context, o *reviewServeOptions, reviewers []reviewweb.Reviewer, agentTokens []string, secure bool, logger *slog.Logger) (http.Handler, func(), error) {
	var hosts []string
	if o.publicURL != "" {
		if u, err := url.Parse(o.publicURL); err == nil && u.Host != "" {
			hosts = append(hosts, u.Host)
		}
	}
	if name, same := reviewweb.SameToken(reviewers, agentTokens); same {
		return nil, nil, fmt.Errorf("reviewer %s's token is also an agent's bearer token: an agent holding it could approve under that name; give every reviewer a token of their own", name)
	}
	var (
		pool *pgxpool.Pool
		err  error
	)
	switch {
	case o.urlFile != "":
		u, rerr := readSecretFile(o.urlFile)
		if rerr != nil {
			return nil, nil, rerr
		}
		pool, err = dbconn.Open(ctx, "the file "+o.urlFile, u, dbconn.Options{MaxConns: 4})
	case os.Getenv(reviewURLEnv) != "":
		pool, err = openPool(ctx, reviewURLEnv, 4, nil)
	default:
		return nil, nil, errors.New("the review page needs a reviewer login of its own: --review-database-url-file FILE (or " + reviewURLEnv + "); give the login its rights with airlock scope apply --scope FILE --reviewer LOGIN")
	}
	if err != nil {
		return nil, nil, fmt.Errorf("review page: %w", err)
	}
	if err := requireSchema(ctx, pool); err != nil {
		pool.Close()
		return nil, nil, fmt.Errorf("review page: %w", err)
	}
	log := audit.NewLog(pool, logger)
	store := review.NewStore(pool, log)
	store.SetLogger(logger)
	store.SetChecker(func(ctx context.Context, scope *scopes.Scope, sql string, catalog bool) (*sqlguard.MigrationPlan, error) {
		return tools.CheckStored(ctx, pool, scope, sql, catalog)
	})
	if err := store.CheckReviewer(ctx); err != nil {
		log.Close()
		pool.Close()
		return nil, nil, fmt.Errorf("review page: %w", err)
	}
	h, err := reviewweb.New(reviewweb.Config{
		Store: store, Pool: pool, Reviewers: reviewers, Secure: secure, Logger: logger,
		AgentToken: reviewweb.TokenSet(agentTokens), Hosts: hosts,
	})
	if err != nil {
		log.Close()
		pool.Close()
		return nil, nil, err
	}
	names := make([]string, len(reviewers))
	for i, r := range reviewers {
		names[i] = r.Name
	}
	logger.Info("serving the review page", "path", reviewweb.Prefix+"/", "reviewers", strings.Join(names, ","))
	return h, func() { log.Close(); pool.Close() }, nil
}

// publicBase is the base URL of links to the review page: --public-url,
// or the address the listener got (known only once it listens).
type publicBase struct {
	fixed string
	got   atomic.Pointer[string]
	tls   bool
}

func newPublicBase(o *reviewServeOptions, tls bool) (*publicBase, error) {
	p := &publicBase{tls: tls}
	if o.publicURL != "" {
		u, err := url.Parse(o.publicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("--public-url %q: give scheme://host[:port]", o.publicURL)
		}
		p.fixed = strings.TrimRight(o.publicURL, "/")
	}
	return p, nil
}

// listening records the listener's address.
func (p *publicBase) listening(addr net.Addr) {
	scheme := "http"
	if p.tls {
		scheme = "https"
	}
	s := scheme + "://" + addr.String()
	if addr.Network() == "unix" {
		s = scheme + "://localhost"
	}
	p.got.Store(&s)
}

func (p *publicBase) String() string {
	if p.fixed != "" {
		return p.fixed
	}
	if s := p.got.Load(); s != nil {
		return *s
	}
	return ""
}
