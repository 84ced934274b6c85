package review

import (
	"context"
	"fmt"
)

// NotReviewerError says why the connection's login may not review
// changes. The database refuses such a login's decisions anyway (the
// decision guard on airlock.changes); this says so before anything runs.
type NotReviewerError struct {
	Login  string
	Reason string
}

func (e *NotReviewerError) Error() string {
	return fmt.Sprintf("%s may not review changes: %s (docs/architecture.md, Principals)", e.Login, e.Reason)
}

// CheckReviewer returns a *NotReviewerError when the pool's login is an
// agent or service login, or holds no right to decide; nil when it may
// review. A superuser may: nothing binds one.
func (s *Store) CheckReviewer(ctx context.Context) error {
	var (
		login                         string
		super, agent, service, maySee bool
	)
	err := s.pool.QueryRow(ctx, `
SELECT r.rolname, r.rolsuper,
	EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles g ON g.oid = m.roleid
		WHERE m.member = r.oid AND g.rolname = 'airlock_agents'),
	EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles g ON g.oid = m.roleid
		WHERE m.member = r.oid AND g.rolname = 'airlock_services'),
	pg_catalog.has_table_privilege('airlock.changes', 'UPDATE')
FROM pg_catalog.pg_roles r WHERE r.rolname = session_user`).Scan(&login, &super, &agent, &service, &maySee)
	if err != nil {
		return fmt.Errorf("check the reviewer's login: %w", err)
	}
	switch {
	case super:
		return nil
	case agent:
		return &NotReviewerError{Login: login, Reason: "it is an agent login, and an agent may not approve changes; review with a login of your own (airlock scope apply --reviewer LOGIN)"}
	case service:
		return &NotReviewerError{Login: login, Reason: "it is the service login, which applied the changes it would decide on; review with a login of your own (airlock scope apply --reviewer LOGIN)"}
	case !maySee:
		return &NotReviewerError{Login: login, Reason: "it holds no reviewer's rights on airlock.changes; an admin gives them with airlock scope apply --scope FILE --reviewer " + login}
	}
	return nil
}
