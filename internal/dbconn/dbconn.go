package dbconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Options tune a pool.
type Options struct {
	// MaxConns bounds the pool (default 4).
	MaxConns int32
	// Params are run-time parameters every connection starts with.
	Params map[string]string
}

// Open connects to url and pings the server. source names where the URL
// came from ("AIRLOCK_DATABASE_URL", "the file /etc/airlock/db-url") for
// messages; the URL itself is never part of an error.
func Open(ctx context.Context, source, url string, opt Options) (*pgxpool.Pool, error) {
	if strings.TrimSpace(url) == "" {
		return nil, fmt.Errorf("%s is empty: it must hold a PostgreSQL URL such as postgres://user:password@host:5432/dbname", source)
	}
	cfg, err := pgxpool.ParseConfig(strings.TrimSpace(url))
	if err != nil {
		// pgx's parse errors quote the URL, password included.
		return nil, fmt.Errorf("%s is not a valid PostgreSQL URL (want postgres://user:password@host:5432/dbname?sslmode=...)", source)
	}
	cfg.MaxConns = opt.MaxConns
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 4
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = "airlock"
	for k, v := range opt.Params {
		cfg.ConnConfig.RuntimeParams[k] = v
	}
	cfg.ConnConfig.ConnectTimeout = 10 * time.Second
	// A canceled call (SIGTERM, a client's cancellation) must stop its
	// statement in the database too. pgx's default handler only sets a
	// deadline on the socket; the CancelRequest it sends when closing the
	// connection runs in a goroutine that a process exiting right after
	// never lets finish, and a backend busy in a statement does not notice
	// a closed socket, so the statement ran on until statement_timeout.
	// This handler sends the CancelRequest itself and waits for it.
	cfg.ConnConfig.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: pc, DeadlineDelay: time.Second}
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(cctx, cfg)
	if err != nil {
		return nil, Explain(source, cfg.ConnConfig.Config, err)
	}
	if err := pool.Ping(cctx); err != nil {
		pool.Close()
		return nil, Explain(source, cfg.ConnConfig.Config, err)
	}
	return pool, nil
}

// Explain turns a failed connection attempt into one line naming the real
// cause and the fix. pgx tries TLS first and then plain text
// (sslmode=prefer) and reports every attempt, so the first line it prints
// is often "server refused TLS connection" when the password was wrong:
// TLS is named here only when TLS is what failed.
func Explain(source string, cfg pgconn.Config, err error) error {
	where := fmt.Sprintf("%s:%d", cfg.Host, cfg.Port)
	if strings.HasPrefix(cfg.Host, "/") {
		where = fmt.Sprintf("the socket in %s (port %d)", cfg.Host, cfg.Port)
	}
	user, db := cfg.User, cfg.Database
	msg := func(format string, args ...any) error {
		return &Error{Message: "cannot connect to the database in " + source + ": " + fmt.Sprintf(format, args...), Err: err}
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case pgerrcode.InvalidPassword:
			return msg("the password for user %q was refused (or no such user exists); fix the user or password in %s", user, source)
		case pgerrcode.InvalidAuthorizationSpecification:
			return msg("the server at %s does not let user %q connect to database %q (%s); add a pg_hba.conf entry for it, or check the user name in %s", where, user, db, pgErr.Message, source)
		case pgerrcode.InvalidCatalogName:
			return msg("database %q does not exist on %s; check the database name in %s (psql -l lists them)", db, where, source)
		case pgerrcode.InsufficientPrivilege:
			return msg("user %q may not connect to database %q; as an admin: GRANT CONNECT ON DATABASE %s TO %s", user, db, quote(db), quote(user))
		case pgerrcode.TooManyConnections:
			return msg("the server at %s has no connection slots left for user %q (%s); try again later or raise the role's or server's connection limit", where, user, pgErr.Message)
		case pgerrcode.CannotConnectNow:
			return msg("the server at %s is starting up or shutting down; try again shortly", where)
		}
		return msg("the server at %s refused the connection: %s (SQLSTATE %s)", where, pgErr.Message, pgErr.Code)
	}
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	switch {
	case errors.As(err, &certErr), errors.As(err, &unknownAuth), errors.As(err, &hostErr):
		return msg("the server's TLS certificate at %s was not accepted (%s); set sslrootcert to the CA that signed it, or fix the host name in %s", where, rootCause(err), source)
	case errors.Is(err, syscall.ECONNREFUSED):
		return msg("nothing accepts connections on %s; is PostgreSQL running there, and are the host and port in %s right?", where, source)
	case errors.Is(err, syscall.ENOENT) && strings.HasPrefix(cfg.Host, "/"):
		return msg("no PostgreSQL socket in %s for port %d; is the server running, and are host and port in %s right?", cfg.Host, cfg.Port, source)
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return msg("no answer from %s within the connect timeout; check the host, the port and any firewall in between", where)
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return msg("host %q was not found (%s); check the host in %s", dnsErr.Name, dnsErr.Err, source)
	}
	if strings.Contains(err.Error(), "server refused TLS connection") {
		// Every attempt failed on TLS: the URL demands it and the server
		// does not offer it.
		return msg("the server at %s does not accept TLS, but %s requires it (sslmode=%s); enable ssl on the server, or for a local server use sslmode=disable", where, source, sslMode(cfg))
	}
	return msg("%s", rootCause(err))
}

// Error is a connection failure explained for a person; Err is pgx's full
// report, for logs that want it.
type Error struct {
	Message string
	Err     error
}

func (e *Error) Error() string { return e.Message }

func (e *Error) Unwrap() error { return e.Err }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// rootCause is the innermost message of the first error in err's tree,
// on one line.
func rootCause(err error) string {
	for {
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			if next := u.Unwrap(); next != nil {
				err = next
				continue
			}
		case interface{ Unwrap() []error }:
			if errs := u.Unwrap(); len(errs) > 0 {
				err = errs[len(errs)-1]
				continue
			}
		}
		return strings.Join(strings.Fields(err.Error()), " ")
	}
}

func sslMode(cfg pgconn.Config) string {
	if cfg.TLSConfig == nil {
		return "disable"
	}
	return "require or stricter"
}

func quote(ident string) string { return `"` + strings.ReplaceAll(ident, `"`, `""`) + `"` }
