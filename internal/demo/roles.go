package demo

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// loginRole is the demo's least-privilege login: it holds nothing of its
// own, only membership in the scope's roles, as the README's setup says.
const loginRole = "airlock_demo_login"

// setupRoles does what an admin does once per database: create a login
// role for airlock, then `airlock scope apply --grant-to` it, which
// compiles the scope to NOLOGIN roles that every airlock transaction runs
// as (SET LOCAL ROLE). The agent's server then logs in as that login
// role; the reviewer keeps the admin's URL.
func (r *run) setupRoles(ctx context.Context) error {
	start := time.Now()
	r.p.status("Compiling the scope to database roles: airlock scope apply --grant-to %s", loginRole)
	conn, err := pgx.Connect(ctx, r.url)
	if err != nil {
		return fmt.Errorf("connect to the demo database: %w", err)
	}
	defer conn.Close(context.Background())
	login := pgx.Identifier{loginRole}.Sanitize()
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1)", loginRole).Scan(&exists); err != nil {
		return fmt.Errorf("look up %s: %w", loginRole, err)
	}
	if !exists {
		if _, err := conn.Exec(ctx, "CREATE ROLE "+login+" LOGIN"); err != nil {
			return fmt.Errorf("create %s: %w", loginRole, err)
		}
	}
	if _, err := conn.Exec(ctx, "GRANT CONNECT ON DATABASE "+pgx.Identifier{Database}.Sanitize()+" TO "+login); err != nil {
		return fmt.Errorf("grant connect: %w", err)
	}
	out, err := reviewer(ctx, r.opt.Binary, r.url, "scope", "apply", "--scope", r.scope, "--grant-to", loginRole)
	if err != nil {
		return err
	}
	// pgcluster's URLs log in as postgres; the demo cluster trusts local
	// connections, so the login role needs no password here.
	r.agentURL = strings.Replace(r.url, "://postgres@", "://"+loginRole+"@", 1)
	r.p.done(fmt.Sprintf("%d statements; the agent's server logs in as %s, which holds nothing of its own", strings.Count(out, ";\n"), loginRole), time.Since(start))
	return nil
}
