package review

import (
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// ErrNotFound is returned (wrapped) for a change that does not exist, or
// that belongs to another scope when asked through GetInScope: the two are
// reported identically, so an agent cannot probe other scopes' changes.
var ErrNotFound = errors.New("no such change")

// notFound names the change the way the caller spelled it, clipped: the id
// may come from an agent.
func notFound(id string) error {
	if u, err := uuid.Parse(id); err == nil {
		return fmt.Errorf("change %s: %w", u, ErrNotFound)
	}
	if len(id) > 64 {
		id = id[:64]
	}
	return fmt.Errorf("change %q: %w", id, ErrNotFound)
}

// NotPendingError refuses a review action on a change that is no longer
// pending: another reviewer decided first, the reaper expired it, or it
// drifted. Change is the change as it is now.
type NotPendingError struct {
	Change *Change
	// Action is what was refused: "commit" or "rollback".
	Action string
}

func (e *NotPendingError) Error() string {
	c := e.Change
	by := c.Reviewer
	if by == "" {
		by = "an unknown reviewer"
	}
	switch c.Status {
	case StatusCommitted:
		return fmt.Sprintf("change %s was already committed by %s at %s", c.ID, by, stamp(c.DecidedAt))
	case StatusCommitting:
		return fmt.Sprintf("change %s is being committed by %s (decided at %s)", c.ID, by, stamp(c.DecidedAt))
	case StatusRolledBack:
		return fmt.Sprintf("change %s was already rolled back by %s at %s%s", c.ID, by, stamp(c.DecidedAt), because(c.Reason))
	case StatusExpired:
		if e.Action == "commit" {
			return fmt.Sprintf("change %s expired at %s: an expired change can never be committed; ask for a new change", c.ID, stamp(c.ExpiresAt))
		}
		return fmt.Sprintf("change %s already expired at %s; nothing is held", c.ID, stamp(c.ExpiresAt))
	case StatusDrifted:
		return fmt.Sprintf("change %s drifted (found by %s at %s)%s; it can never be committed; ask for a new change", c.ID, by, stamp(c.DecidedAt), because(c.Reason))
	}
	return fmt.Sprintf("change %s is %s, not pending", c.ID, c.Status)
}

func because(reason string) string {
	if reason == "" {
		return ""
	}
	return ": " + reason
}

// stamp renders a time for people, in UTC so that reviewers in different
// places read the same text.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "an unknown time"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}
