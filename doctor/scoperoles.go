package doctor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/airlock-dev/airlock/catalog"
	"github.com/airlock-dev/airlock/roles"
)

// scopeRoleNames lists the roles the scope compiles to: the read role, and
// the write role when the scope writes.
func (d *doctor) scopeRoleNames() []string {
	names := []string{d.scope.ReadRole()}
	if d.scope.Write != nil {
		names = append(names, d.scope.WriteRole())
	}
	return names
}

// missingRoles returns the names among want that no role has.
func (d *doctor) missingRoles(ctx context.Context, want []string) ([]string, error) {
	have, err := catalog.ExistingRoles(ctx, d.pool, want)
	if err != nil {
		return nil, fmt.Errorf("list roles: %w", err)
	}
	var missing []string
	for _, name := range want {
		if !slices.Contains(have, name) {
			missing = append(missing, name)
		}
	}
	return missing, nil
}

func (d *doctor) scopeTables(ctx context.Context) Check {
	problems, err := roles.Problems(ctx, d.pool, d.scope)
	if err != nil {
		return couldNotCheck(CheckScopeTables, err)
	}
	if len(problems) == 0 {
		// Row filters are checked against the catalog by Plan.
		_, err = roles.Plan(ctx, d.pool, d.scope, roles.Options{})
		var fe *roles.FilterError
		if errors.As(err, &fe) {
			problems = append(problems, roles.Problem{Path: fe.Path(), Message: fe.Reason,
				Fix: "fix the row_filter in " + d.opt.scopeFile()})
		}
	}
	return judgeScopeTables(len(scopeTables(d.scope)), problems)
}

func judgeScopeTables(n int, problems []roles.Problem) Check {
	c := Check{Name: CheckScopeTables, Status: OK, Detail: fmt.Sprintf("the scope's %d %s exist and fit it", n, plural(n, "table", "tables"))}
	if len(problems) == 0 {
		return c
	}
	details, fixes := make([]string, len(problems)), make([]string, 0, len(problems))
	for i, p := range problems {
		details[i] = p.String()
		if p.Fix != "" && !slices.Contains(fixes, p.Fix) {
			fixes = append(fixes, p.Fix)
		}
	}
	c.Status, c.Detail, c.Fix = FAIL, strings.Join(details, "; "), strings.Join(fixes, "; ")
	return c
}

func (d *doctor) scopeRoles(ctx context.Context) Check {
	names := d.scopeRoleNames()
	missing, err := d.missingRoles(ctx, names)
	if err != nil {
		return couldNotCheck(CheckScopeRoles, err)
	}
	if len(missing) > 0 {
		return judgeScopeRoles(names, missing, 0, d.opt.scopeFile())
	}
	pending, err := roles.Plan(ctx, d.pool, d.scope, roles.Options{})
	var (
		pe *roles.ProblemsError
		fe *roles.FilterError
	)
	if errors.As(err, &pe) || errors.As(err, &fe) {
		return Check{Name: CheckScopeRoles, Status: FAIL,
			Detail: "cannot compare the scope with the database until the scope tables check passes",
			Fix:    "fix what the scope tables check reports, then run airlock scope apply --scope " + d.opt.scopeFile()}
	}
	if err != nil {
		return Check{Name: CheckScopeRoles, Status: FAIL,
			Detail: fmt.Sprintf("cannot compare the scope with the database: %v", err),
			Fix:    "run airlock scope plan --scope " + d.opt.scopeFile() + " and fix what it reports"}
	}
	return judgeScopeRoles(names, nil, len(pending), d.opt.scopeFile())
}

func judgeScopeRoles(names, missing []string, pending int, scopeFile string) Check {
	c := Check{Name: CheckScopeRoles, Status: OK, Detail: strings.Join(names, ", ") + " match the scope"}
	switch {
	case len(missing) > 0:
		c.Status = FAIL
		c.Detail = fmt.Sprintf("%s %s not exist: the database does not enforce the scope",
			strings.Join(missing, ", "), plural(len(missing), "does", "do"))
		c.Fix = "run airlock scope apply --scope " + scopeFile
	case pending > 0:
		c.Status = FAIL
		c.Detail = fmt.Sprintf("drift between the scope file and the database: %d %s pending",
			pending, plural(pending, "statement", "statements"))
		c.Fix = "run airlock scope plan --scope " + scopeFile + " to see them, then airlock scope apply --scope " + scopeFile
	}
	return c
}
