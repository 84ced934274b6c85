package scopes

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"time"
)

// Defaults applied by Parse and Load when a field is absent.
const (
	DefaultURLEnv             = "AIRLOCK_DATABASE_URL"
	DefaultMaxRows            = 500
	DefaultStatementTimeoutMS = 5000
	DefaultLockTimeoutMS      = 1000
	DefaultMaxBytes           = 1 << 20
	DefaultMaxCellBytes       = 16 << 10
	DefaultMaxSQLBytes        = 64 << 10
	DefaultWriteMode          = ModeReplay
	DefaultReviewTTL          = 30 * time.Minute
	DefaultWriteTimeoutMS     = 30000
	DefaultWriteLockTimeoutMS = 2000
	DefaultLargeTableRows     = 100000
	DefaultRowsAffectedWarn   = 10000
	DefaultBranchStrategy     = "template"
	DefaultBranchTTL          = 2 * time.Hour
	DefaultMaxBranches        = 5
	// DefaultMaxPending bounds a scope's pending changes, and
	// DefaultMaxPendingPerSession one agent session's.
	DefaultMaxPending           = 50
	DefaultMaxPendingPerSession = 10
	// DefaultApprovals is how many reviewers approve a change: one.
	DefaultApprovals = 1
	// DefaultUndoRetention is how long a committed change stays
	// revertible.
	DefaultUndoRetention = 7 * 24 * time.Hour
)

// WriteMode is write.mode: how a write is held for review
// (docs/architecture.md, Write modes).
type WriteMode string

// The write modes.
const (
	// ModeReplay: the migration runs and is rolled back; a commit replays
	// it and commits only if its effects are identical.
	ModeReplay WriteMode = "replay"
	// ModePrepared: the migration ends in PREPARE TRANSACTION; a commit is
	// COMMIT PREPARED.
	ModePrepared WriteMode = "prepared"
	// ModeBranch: the session's own branch database takes the changes; a
	// merge replays its log on the source.
	ModeBranch WriteMode = "branch"
)

// WriteModes lists every write mode, in the order the schema documents
// them; the schema's write.mode enum is generated from it.
var WriteModes = []WriteMode{ModeReplay, ModePrepared, ModeBranch}

// Tool names, as listed to agents. Keep them stable: users' configs and
// tests rely on them.
const (
	ToolQueryReadonly  = "query_readonly"
	ToolMigrateDryRun  = "migrate_dry_run"
	ToolApplyMigration = "apply_migration_with_ticket"
	ToolListTables     = "list_tables"
	ToolDescribeTable  = "describe_table"
	ToolChangeStatus   = "get_change_status"
)

// Scope is one validated scope file.
type Scope struct {
	Name     string   `json:"name"`
	Database Database `json:"database"`
	Read     Read     `json:"read"`
	// Write is nil when the scope has no write section: no write tool is
	// listed then.
	Write *Write `json:"write,omitempty"`
	Tools Tools  `json:"tools"`

	// source is the file the scope was parsed from.
	source []byte
}

// Source returns the document the scope was parsed from (nil for a scope
// built in code). `airlock scope apply` records it in the database, where
// a reviewer's commit checks stored statements against the scope as
// applied (docs/architecture.md, Approvals).
func (s *Scope) Source() []byte { return s.source }

// Version identifies the scope's document: the first 16 hex digits of the
// SHA-256 of its source. A scope built in code has version "".
func (s *Scope) Version() string {
	if s.source == nil {
		return ""
	}
	sum := sha256.Sum256(s.source)
	return hex.EncodeToString(sum[:8])
}

// Database says where the connection string comes from. The URL itself is
// never in the file.
type Database struct {
	URLEnv string `json:"url_env"`
}

// Read is the read side of a scope.
type Read struct {
	// Tables maps "schema.table" to its rule.
	Tables             map[string]TableRule `json:"tables"`
	MaxRows            int                  `json:"max_rows"`
	StatementTimeoutMS int                  `json:"statement_timeout_ms"`
	LockTimeoutMS      int                  `json:"lock_timeout_ms"`
	MaxBytes           int                  `json:"max_bytes"`
	MaxCellBytes       int                  `json:"max_cell_bytes"`
	MaxSQLBytes        int                  `json:"max_sql_bytes"`
	// SearchPath lists the schemas unqualified table names resolve in.
	SearchPath []string `json:"search_path"`
	// Functions lists extra functions ("schema.name") the agent may call
	// beyond the built-in rule.
	Functions []string `json:"functions"`
	// Role is the database role reads run as; empty means the default
	// (see Scope.ReadRole).
	Role string `json:"role,omitempty"`
}

// TableRule is one table's read rule. Nil Columns allows every column.
type TableRule struct {
	Columns []string `json:"columns,omitempty"`
	Mask    []string `json:"mask,omitempty"`
	// RowFilter is an SQL boolean expression over the table's columns that
	// the scope's roles see rows through (a row-level-security policy).
	// Empty means every row. Parse checks its shape (ParseRowFilter);
	// package roles validates it against the catalog before using it.
	RowFilter string `json:"row_filter,omitempty"`
}

// Write is the write side of a scope.
type Write struct {
	Mode               WriteMode     `json:"mode"`
	Tables             []string      `json:"tables"`
	Allow              []string      `json:"allow"`
	TicketPattern      string        `json:"ticket_pattern"`
	ReviewTTL          time.Duration `json:"-"`
	StatementTimeoutMS int           `json:"statement_timeout_ms"`
	LockTimeoutMS      int           `json:"lock_timeout_ms"`
	LargeTableRows     int64         `json:"large_table_rows"`
	RowsAffectedWarn   int64         `json:"rows_affected_warn"`
	// OwnTables makes the write role the owner of the write tables (and
	// gives it CREATE on their schemas): PostgreSQL lets only a table's
	// owner change its definition, so DDL kinds need it.
	OwnTables bool `json:"own_tables"`
	// Role is the database role writes run as; empty means the default
	// (see Scope.WriteRole).
	Role string `json:"role,omitempty"`
	// MaxPending bounds the scope's pending changes, and
	// MaxPendingPerSession those of one agent session: held changes cost
	// locks, prepared transaction slots and reviewers' attention.
	MaxPending           int `json:"max_pending"`
	MaxPendingPerSession int `json:"max_pending_per_session"`
	// Approvals is how many distinct reviewers must approve a change
	// before it commits (docs/architecture.md, Reviewers).
	Approvals int `json:"approvals"`
	// Undo is write.undo; applyDefaults fills it in.
	Undo *Undo `json:"undo,omitempty"`
	// AllowBlockingLocks lets a prepared change hold a lock that blocks
	// reads of a table (ACCESS EXCLUSIVE) until a reviewer acts; without
	// it such a change is refused in prepared mode.
	AllowBlockingLocks bool `json:"allow_blocking_locks"`
	// Branch holds the branch mode settings; applyDefaults fills it in
	// when Mode is "branch".
	Branch *Branch `json:"branch,omitempty"`
}

// Undo is write.undo: whether committed changes are captured for airlock
// revert, and for how long (docs/architecture.md, Undo).
type Undo struct {
	Enabled   *bool         `json:"enabled,omitempty"`
	Retention time.Duration `json:"-"`
}

// On reports whether committed changes are captured.
func (u *Undo) On() bool { return u != nil && (u.Enabled == nil || *u.Enabled) }

// Branch is write.branch: how a session's branch database is made and
// how long it may live.
type Branch struct {
	// Strategy is "template" or "schema".
	Strategy   string        `json:"strategy"`
	SampleRows int           `json:"sample_rows"`
	TTL        time.Duration `json:"-"`
	// MaxBranches bounds the scope's live branches.
	MaxBranches int `json:"max_branches"`
}

// Tools switches tools off. A disabled tool is not listed at all.
type Tools struct {
	Disable []string `json:"disable"`
}

// DefaultSearchPath is where unqualified table names resolve when the scope
// sets no read.search_path, as in a stock PostgreSQL for a role without a
// schema of its own name.
var DefaultSearchPath = []string{"public"}

// applyDefaults fills every absent setting with its Default* value.
func (s *Scope) applyDefaults() {
	s.Database.URLEnv = s.URLEnv()
	r := &s.Read
	setDefault(&r.MaxRows, DefaultMaxRows)
	setDefault(&r.StatementTimeoutMS, DefaultStatementTimeoutMS)
	setDefault(&r.LockTimeoutMS, DefaultLockTimeoutMS)
	setDefault(&r.MaxBytes, DefaultMaxBytes)
	setDefault(&r.MaxCellBytes, DefaultMaxCellBytes)
	setDefault(&r.MaxSQLBytes, DefaultMaxSQLBytes)
	if len(r.SearchPath) == 0 {
		r.SearchPath = slices.Clone(DefaultSearchPath)
	}
	if w := s.Write; w != nil {
		setDefault(&w.Mode, DefaultWriteMode)
		setDefault(&w.ReviewTTL, DefaultReviewTTL)
		setDefault(&w.StatementTimeoutMS, DefaultWriteTimeoutMS)
		setDefault(&w.LockTimeoutMS, DefaultWriteLockTimeoutMS)
		setDefault(&w.LargeTableRows, DefaultLargeTableRows)
		setDefault(&w.RowsAffectedWarn, DefaultRowsAffectedWarn)
		setDefault(&w.MaxPending, DefaultMaxPending)
		setDefault(&w.MaxPendingPerSession, min(DefaultMaxPendingPerSession, w.MaxPending))
		setDefault(&w.Approvals, DefaultApprovals)
		if w.Undo == nil {
			w.Undo = &Undo{}
		}
		setDefault(&w.Undo.Retention, DefaultUndoRetention)
		if w.Mode == ModeBranch {
			if w.Branch == nil {
				w.Branch = &Branch{}
			}
			setDefault(&w.Branch.Strategy, DefaultBranchStrategy)
			setDefault(&w.Branch.TTL, DefaultBranchTTL)
			setDefault(&w.Branch.MaxBranches, DefaultMaxBranches)
		}
	}
}

func setDefault[T comparable](field *T, def T) {
	var zero T
	if *field == zero {
		*field = def
	}
}
