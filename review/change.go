package review

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/airlock-dev/airlock/migrate"
	"github.com/airlock-dev/airlock/sqlguard"
)

// Change is one pending (or decided) change: a row of airlock.changes.
type Change struct {
	// ID is a UUID; Record makes one when it is empty.
	ID      string
	Ticket  string
	Summary string
	// SQL is the migration as the agent sent it, for people to read.
	// What a replay runs is Statements, never this text.
	SQL string
	// SQLFingerprint is pg_query's fingerprint of SQL (the plan's).
	SQLFingerprint string
	// Statements are the statements the guard accepted, in order: exactly
	// what a replay runs (each one's QualifiedSQL when it has one).
	Statements []sqlguard.MigrationStatement
	Scope      string
	// ScopeVersion is the version of the scope file the service checked
	// the change under (scopes.Scope.Version).
	ScopeVersion string
	Session      string
	// Mode is the write mode the change is held in: replay, prepared
	// (GID names its prepared transaction) or branch (BranchID names the
	// branch it was committed on).
	Mode Mode
	// GID names the prepared transaction (prepared mode only):
	// "airlock_" and a UUID.
	GID string
	// BranchID is the branch the change was committed on (branch mode
	// only).
	BranchID string
	// Report is the dry run's (or the PREPARE run's) full report.
	Report *migrate.Report
	// Effects are what a replay must reproduce exactly; Record derives
	// them from Report when they are empty.
	Effects migrate.Effects
	// Fingerprint is Effects.Fingerprint(), set by Record.
	Fingerprint string
	// Options are the limits and role the migration ran with; a replay
	// uses them again. Options.Progress is not stored.
	Options migrate.Options
	Status  Status
	// CreatedAt defaults to the database's now() when zero.
	CreatedAt time.Time
	// ExpiresAt is when the change expires. When zero, Record sets it to
	// CreatedAt + TTL using the database's clock.
	ExpiresAt time.Time
	// TTL is how long the change may wait for a reviewer; only read by
	// Record, and only when ExpiresAt is zero.
	TTL time.Duration
	// Limits, only read by Record, bound the pending changes of the
	// change's scope and session, this one included.
	Limits Limits
	// Reviewer, DecidedAt and Reason are set once the change is decided
	// (Reviewer is "reaper" for expired ones; DecidedAt is zero before).
	Reviewer  string
	DecidedAt time.Time
	Reason    string
	// AppliedBy is the login that recorded the change, as the database
	// saw it (set by the database, never by the writer).
	AppliedBy string
	// Reverts, on a revert (airlock revert), is the committed change it
	// undoes; its Revert holds what it restores.
	Reverts string
	Revert  *RevertPlan
}

// NewChange fills the parts of a Change that come from a checked plan and
// the report of its run: Statements, SQLFingerprint, Report, Effects,
// Fingerprint and Options. The caller sets the rest (ticket, summary, SQL,
// scope, session, mode, GID, TTL) before Record.
func NewChange(plan *sqlguard.MigrationPlan, rep *migrate.Report, opt migrate.Options) *Change {
	c := &Change{Report: rep, Options: opt}
	if plan != nil {
		c.Statements = slices.Clone(plan.Statements)
		c.SQLFingerprint = plan.Fingerprint
	}
	if rep != nil {
		c.Effects = rep.Effects()
		c.Fingerprint = c.Effects.Fingerprint()
	}
	c.Options.Progress = nil
	return c
}

// Plan rebuilds the migration plan a replay runs: the stored statements,
// not the agent's text.
func (c *Change) Plan() *sqlguard.MigrationPlan {
	return &sqlguard.MigrationPlan{Statements: slices.Clone(c.Statements), Fingerprint: c.SQLFingerprint}
}

// Expired reports whether the change is past its expiry at now. The store
// decides on the database's clock; this is for display.
func (c *Change) Expired(now time.Time) bool { return !now.Before(c.ExpiresAt) }

// Decided reports whether the change reached a final status.
func (c *Change) Decided() bool {
	return c.Status != StatusPending && c.Status != StatusCommitting
}

// Risk is the report's risk level, or "" without a report.
func (c *Change) Risk() string {
	if c.Report == nil {
		return ""
	}
	return string(c.Report.Risk)
}

// storedStatement is the JSON shape of a statement in
// airlock.changes.statements. sqlguard's type has no JSON tags; this one
// pins the column's format independently of it.
type storedStatement struct {
	SQL          string             `json:"sql"`
	QualifiedSQL string             `json:"qualified_sql,omitempty"`
	Kind         string             `json:"kind"`
	Kinds        []string           `json:"kinds,omitempty"`
	Targets      []string           `json:"targets"`
	IndexTargets []string           `json:"index_targets,omitempty"`
	Reads        []string           `json:"reads,omitempty"`
	HasWhere     bool               `json:"has_where"`
	NotValid     bool               `json:"not_valid,omitempty"`
	Findings     []sqlguard.Finding `json:"findings,omitempty"`
	Sequences    []string           `json:"sequences,omitempty"`
	DoBody       string             `json:"do_body,omitempty"`
}

func encodeStatements(sts []sqlguard.MigrationStatement) ([]byte, error) {
	out := make([]storedStatement, len(sts))
	for i, s := range sts {
		out[i] = storedStatement{
			SQL: s.SQL, QualifiedSQL: s.QualifiedSQL, Kind: s.Kind, Kinds: s.Kinds,
			Targets: s.Targets, IndexTargets: s.IndexTargets, Reads: s.Reads,
			HasWhere: s.HasWhere, NotValid: s.NotValid, Findings: s.Findings,
			Sequences: s.Sequences, DoBody: s.DoBody,
		}
		if out[i].Targets == nil {
			out[i].Targets = []string{}
		}
	}
	return json.Marshal(out)
}

func decodeStatements(b []byte) ([]sqlguard.MigrationStatement, error) {
	var in []storedStatement
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, fmt.Errorf("decode statements: %w", err)
	}
	out := make([]sqlguard.MigrationStatement, len(in))
	for i, s := range in {
		out[i] = sqlguard.MigrationStatement{
			SQL: s.SQL, QualifiedSQL: s.QualifiedSQL, Kind: s.Kind, Kinds: s.Kinds,
			Targets: s.Targets, IndexTargets: s.IndexTargets, Reads: s.Reads,
			HasWhere: s.HasWhere, NotValid: s.NotValid, Findings: s.Findings,
			Sequences: s.Sequences, DoBody: s.DoBody,
		}
	}
	return out, nil
}

// storedOptions is the JSON shape of airlock.changes.options.
type storedOptions struct {
	StatementTimeoutMS int64    `json:"statement_timeout_ms,omitempty"`
	LockTimeoutMS      int64    `json:"lock_timeout_ms,omitempty"`
	Role               string   `json:"role,omitempty"`
	LargeTableRows     int64    `json:"large_table_rows,omitempty"`
	RowsAffectedWarn   int64    `json:"rows_affected_warn,omitempty"`
	SearchPath         []string `json:"search_path,omitempty"`
}

func encodeOptions(o migrate.Options) ([]byte, error) {
	return json.Marshal(storedOptions{
		StatementTimeoutMS: o.StatementTimeout.Milliseconds(),
		LockTimeoutMS:      o.LockTimeout.Milliseconds(),
		Role:               o.Role,
		LargeTableRows:     o.LargeTableRows,
		RowsAffectedWarn:   o.RowsAffectedWarn,
		SearchPath:         o.SearchPath,
	})
}

func decodeOptions(b []byte) (migrate.Options, error) {
	var s storedOptions
	if err := json.Unmarshal(b, &s); err != nil {
		return migrate.Options{}, fmt.Errorf("decode options: %w", err)
	}
	return migrate.Options{
		StatementTimeout: time.Duration(s.StatementTimeoutMS) * time.Millisecond,
		LockTimeout:      time.Duration(s.LockTimeoutMS) * time.Millisecond,
		Role:             s.Role,
		LargeTableRows:   s.LargeTableRows,
		RowsAffectedWarn: s.RowsAffectedWarn,
		SearchPath:       s.SearchPath,
	}, nil
}
