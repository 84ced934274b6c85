package doctor

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/airlock-dev/airlock/review"
)

func (d *doctor) prepared(ctx context.Context) Check {
	mode := ""
	if d.scope.Write != nil {
		mode = string(d.scope.Write.Mode)
	}
	if mode != "prepared" {
		return judgePrepared(mode, review.PreparedSlots{})
	}
	slots, err := review.ReadPreparedSlots(ctx, d.pool)
	if err != nil {
		return couldNotCheck(CheckPrepared, err)
	}
	return judgePrepared(mode, slots)
}

// judgePrepared reports the cluster's prepared transaction slots: airlock
// holds a prepared change only while fewer than Max - Headroom are in use
// (docs/architecture.md, Held changes).
func judgePrepared(mode string, slots review.PreparedSlots) Check {
	c := Check{Name: CheckPrepared, Status: OK}
	switch {
	case mode != "prepared":
		c.Detail = "not needed: write mode is not prepared"
		if mode != "" {
			c.Detail = "not needed: write mode is " + mode
		}
	case slots.Max > 0:
		c.Detail = fmt.Sprintf("max_prepared_transactions = %d, %d in use; airlock holds a change only while fewer than %d are (it leaves %d free for others)",
			slots.Max, slots.Used, slots.Max-slots.Headroom, slots.Headroom)
		if !slots.Available() {
			c.Status = WARN
			c.Detail += ": every apply is refused (prepared_slots_full) until reviewers decide pending changes"
			c.Fix = "commit or roll back pending changes (airlock pending), roll back stray prepared transactions (SELECT gid FROM pg_prepared_xacts), or raise max_prepared_transactions"
		}
	default:
		c.Status = FAIL
		c.Detail = "write mode is prepared but max_prepared_transactions = 0: every write would fail"
		c.Fix = "set max_prepared_transactions (e.g. 20) in postgresql.conf and restart PostgreSQL"
	}
	return c
}

type timeoutFacts struct {
	statementMS, idleMS int64
}

func (d *doctor) timeouts(ctx context.Context, login string) Check {
	var t timeoutFacts
	// pg_settings.setting is in the parameter's unit, milliseconds for both.
	err := d.pool.QueryRow(ctx, `
SELECT (SELECT setting::bigint FROM pg_catalog.pg_settings WHERE name = 'statement_timeout'),
       (SELECT setting::bigint FROM pg_catalog.pg_settings WHERE name = 'idle_in_transaction_session_timeout')`).
		Scan(&t.statementMS, &t.idleMS)
	if err != nil {
		return couldNotCheck(CheckTimeouts, fmt.Errorf("read timeouts: %w", err))
	}
	return judgeTimeouts(login, t)
}

func judgeTimeouts(login string, t timeoutFacts) Check {
	c := Check{Name: CheckTimeouts, Status: OK,
		Detail: fmt.Sprintf("statement_timeout = %dms, idle_in_transaction_session_timeout = %dms", t.statementMS, t.idleMS)}
	var unset, fixes []string
	quoted := pgx.Identifier{login}.Sanitize()
	if t.statementMS == 0 {
		unset = append(unset, "statement_timeout")
		fixes = append(fixes, "ALTER ROLE "+quoted+" SET statement_timeout = '60s';")
	}
	if t.idleMS == 0 {
		unset = append(unset, "idle_in_transaction_session_timeout")
		fixes = append(fixes, "ALTER ROLE "+quoted+" SET idle_in_transaction_session_timeout = '60s';")
	}
	if len(unset) > 0 {
		c.Status = WARN
		c.Detail = fmt.Sprintf("%s: no default for %s (airlock sets its own limits per transaction; a default also protects other clients)",
			login, strings.Join(unset, " or "))
		c.Fix = strings.Join(fixes, " ")
	}
	return c
}

type tlsFacts struct {
	remote net.Addr
	ssl    bool
	// unverified is true when the TLS configuration skips the check of the
	// server's certificate (sslmode=require, verify-ca checks no host name).
	unverified bool
}

func (d *doctor) tls(ctx context.Context) Check {
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return couldNotCheck(CheckTLS, fmt.Errorf("acquire a connection: %w", err))
	}
	defer conn.Release()
	f := tlsFacts{remote: conn.Conn().PgConn().Conn().RemoteAddr()}
	err = conn.QueryRow(ctx, `SELECT coalesce((SELECT ssl FROM pg_catalog.pg_stat_ssl WHERE pid = pg_catalog.pg_backend_pid()), false)`).Scan(&f.ssl)
	if err != nil {
		return couldNotCheck(CheckTLS, fmt.Errorf("read pg_stat_ssl: %w", err))
	}
	f.unverified = f.ssl && insecure(d.pool.Config().ConnConfig.TLSConfig)
	return judgeTLS(f)
}

func insecure(cfg *tls.Config) bool {
	return cfg != nil && cfg.InsecureSkipVerify
}

// isLocal reports whether addr, the address the connection actually went
// to, is a Unix socket or a loopback address: the URL's host "localhost",
// 127.0.0.0/8 and ::1 all end up here.
func isLocal(addr net.Addr) bool {
	switch a := addr.(type) {
	case *net.UnixAddr:
		return true
	case *net.TCPAddr:
		return a.IP.IsLoopback()
	}
	return false
}

func judgeTLS(f tlsFacts) Check {
	c := Check{Name: CheckTLS, Status: OK}
	where := "unknown address"
	if f.remote != nil {
		where = f.remote.String()
	}
	switch {
	case isLocal(f.remote):
		c.Detail = "local connection (" + where + "): TLS not needed"
	case !f.ssl:
		c.Status = FAIL
		c.Detail = "the connection to " + where + " is not encrypted: data and the password cross the network in clear text"
		c.Fix = "add sslmode=verify-full to the database URL (and sslrootcert=FILE if the server's CA is not a system one)"
	case f.unverified:
		c.Status = WARN
		c.Detail = "TLS to " + where + " without checking the server's certificate and host name"
		c.Fix = "use sslmode=verify-full in the database URL"
	default:
		c.Detail = "TLS to " + where
	}
	return c
}

// branchFacts are what creating a branch database takes.
type branchFacts struct {
	mode, strategy string
	login          string
	super          bool
	createDB       bool
	// copyable: the login may use the current database as a template (it
	// is marked as one, or the login has its owner's rights).
	copyable bool
	database string
}

func (d *doctor) branch(ctx context.Context) Check {
	w := d.scope.Write
	if w == nil || w.Mode != "branch" {
		mode := ""
		if w != nil {
			mode = string(w.Mode)
		}
		return judgeBranch(branchFacts{mode: mode})
	}
	f := branchFacts{mode: string(w.Mode)}
	if w.Branch != nil {
		f.strategy = w.Branch.Strategy
	}
	err := d.pool.QueryRow(ctx, `
SELECT r.rolname, r.rolsuper, r.rolcreatedb, d.datname,
       d.datistemplate OR pg_catalog.pg_has_role(current_user, d.datdba, 'MEMBER')
FROM pg_catalog.pg_roles r, pg_catalog.pg_database d
WHERE r.rolname = current_user AND d.datname = current_database()`).
		Scan(&f.login, &f.super, &f.createDB, &f.database, &f.copyable)
	if err != nil {
		return couldNotCheck(CheckBranch, fmt.Errorf("read the login role's database rights: %w", err))
	}
	return judgeBranch(f)
}

func judgeBranch(f branchFacts) Check {
	c := Check{Name: CheckBranch, Status: OK}
	switch {
	case f.mode != "branch":
		c.Detail = "not needed: write mode is not branch"
		if f.mode != "" {
			c.Detail = "not needed: write mode is " + f.mode
		}
	case !f.super && !f.createDB:
		c.Status = FAIL
		c.Detail = f.login + " cannot create databases: every session's first apply would fail to make its branch"
		c.Fix = "ALTER ROLE " + pgx.Identifier{f.login}.Sanitize() + " CREATEDB"
	case f.strategy == "template" && !f.super && !f.copyable:
		c.Status = FAIL
		c.Detail = f.login + " may not copy " + f.database + " as a template (only its owner or a superuser may)"
		// Marking the database IS_TEMPLATE would let every CREATEDB role
		// copy it, data included: not a fix to suggest.
		c.Fix = `set write.branch.strategy to "schema" (copies definitions and sample rows), or connect as a role with the database owner's rights`
	default:
		c.Detail = f.login + " can create branch databases (" + f.strategy + " strategy)"
	}
	return c
}
