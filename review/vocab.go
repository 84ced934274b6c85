package review

import "github.com/airlock-dev/airlock/scopes"

// The words review stores in airlock.changes and airlock.branches and
// hands to its callers, typed so that a status cannot be passed where a
// mode is meant, and listed once so that a reader sees every value a
// column can hold. The SQL names the same values as literals (status =
// 'pending'), as the schema's checks, triggers and partial indexes do: a
// partial index serves only a query that names its literal.

// Status is a change's status (airlock.changes.status). A change starts
// pending and ends in exactly one of the decided statuses; no status ever
// goes back to pending.
type Status string

const (
	StatusPending Status = "pending"
	// StatusCommitting is transitional and prepared mode only: a reviewer
	// decided to commit and COMMIT PREPARED is under way (or was cut by a
	// crash; Reap finishes it). Nothing can stop it any more.
	StatusCommitting Status = "committing"
	StatusCommitted  Status = "committed"
	StatusRolledBack Status = "rolled_back"
	StatusExpired    Status = "expired"
	StatusDrifted    Status = "drifted"
)

// Mode is the write mode a change is held in (docs/architecture.md, Write
// modes; airlock.changes.mode): the scope's write.mode, one vocabulary
// with one home in scopes.
type Mode = scopes.WriteMode

const (
	// ModeReplay changes were rolled back after the dry run; committing
	// one re-runs its stored statements and commits only if the effects
	// are identical.
	ModeReplay = scopes.ModeReplay
	// ModePrepared changes are a prepared transaction named by GID;
	// committing one is COMMIT PREPARED.
	ModePrepared = scopes.ModePrepared
	// ModeBranch changes were committed on the session's branch database;
	// the reviewer merges the branch's whole change log (see Merge).
	ModeBranch = scopes.ModeBranch
)

// BranchStatus is a branch's status (airlock.branches.status). A branch
// starts live and ends in exactly one of the others; its database exists
// only while it is live (or until a failed drop is retried by Reap).
type BranchStatus string

const (
	BranchLive      BranchStatus = "live"
	BranchMerged    BranchStatus = "merged"
	BranchDiscarded BranchStatus = "discarded"
	BranchExpired   BranchStatus = "expired"
)

// Strategy is how a branch database is made (scope write.branch.strategy).
type Strategy string

const (
	StrategyTemplate Strategy = "template"
	StrategySchema   Strategy = "schema"
)
