package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// The demo's principals (docs/architecture.md, Principals): a login of its
// own for each, with a password, as on a real database.
const (
	agentLogin    = "airlock_demo_agent"
	serviceLogin  = "airlock_demo_service"
	reviewerLogin = "airlock_demo_reviewer"
)

// logins are the demo's principals' connection URLs.
type logins struct {
	agent, service, reviewer string
}

// setupRoles does what an admin does once per database: create a login for
// each principal, then `airlock scope apply`, which compiles the scope to
// NOLOGIN roles and gives each login its principal's rights: the agent's the
// read role only, the service's the read and write roles, the reviewer's the
// write role and the right to decide. --harden takes from PUBLIC what any
// login could otherwise do past the scope.
func (r *run) setupRoles(ctx context.Context) error {
	start := time.Now()
	r.p.status("Compiling the scope to database roles, a login for each principal: airlock scope apply --grant-to %s --service %s --reviewer %s --harden",
		agentLogin, serviceLogin, reviewerLogin)
	conn, err := pgx.Connect(ctx, r.url)
	if err != nil {
		return fmt.Errorf("connect to the demo database: %w", err)
	}
	defer conn.Close(context.Background())
	urls := map[string]*string{agentLogin: &r.logins.agent, serviceLogin: &r.logins.service, reviewerLogin: &r.logins.reviewer}
	for _, login := range []string{agentLogin, serviceLogin, reviewerLogin} {
		password, err := newSecret()
		if err != nil {
			return err
		}
		if err := ensureLogin(ctx, conn, login, password); err != nil {
			return err
		}
		*urls[login] = r.cluster.LoginURL(login, password, Database)
	}
	out, err := reviewer(ctx, r.opt.Binary, r.url, "scope", "apply", "--scope", r.scope,
		"--grant-to", agentLogin, "--service", serviceLogin, "--reviewer", reviewerLogin, "--harden")
	if err != nil {
		return err
	}
	r.p.done(fmt.Sprintf("%d statements", strings.Count(out, ";\n")), time.Since(start))
	return nil
}

// ensureLogin creates login with password, or gives an existing one (a
// kept demo's, started again) the new password.
func ensureLogin(ctx context.Context, conn *pgx.Conn, login, password string) error {
	ident := pgx.Identifier{login}.Sanitize()
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1)", login).Scan(&exists); err != nil {
		return fmt.Errorf("look up %s: %w", login, err)
	}
	verb := "CREATE"
	if exists {
		verb = "ALTER"
	}
	// The password is hex: it needs no quoting beyond the literal's.
	if _, err := conn.Exec(ctx, fmt.Sprintf("%s ROLE %s LOGIN PASSWORD '%s'", verb, ident, password)); err != nil {
		return fmt.Errorf("create login %s: %w", login, err)
	}
	if _, err := conn.Exec(ctx, "GRANT CONNECT ON DATABASE "+pgx.Identifier{Database}.Sanitize()+" TO "+ident); err != nil {
		return fmt.Errorf("grant connect to %s: %w", login, err)
	}
	return nil
}

// newSecret is 32 hex digits from the system's random source: a password
// or a bearer token.
func newSecret() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make a secret: %w", err)
	}
	return hex.EncodeToString(b), nil
}
