package demo

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// setupRoles does what an admin does once per database: `airlock scope
// apply`, which compiles the scope to NOLOGIN roles that every airlock
// transaction then runs as (SET LOCAL ROLE). The demo's server logs in as
// the cluster's superuser with --allow-owner: its migration adds a column,
// and PostgreSQL lets only a table's owner change its definition.
func (r *run) setupRoles(ctx context.Context) error {
	start := time.Now()
	r.p.status("Compiling the scope to database roles: airlock scope apply")
	out, err := reviewer(ctx, r.opt.Binary, r.url, "scope", "apply", "--scope", r.scope)
	if err != nil {
		return err
	}
	r.p.done(fmt.Sprintf("%d statements; every read and DML transaction runs as these roles", strings.Count(out, ";\n")), time.Since(start))
	return nil
}
