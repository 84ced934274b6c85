package review

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/airlock-dev/airlock/migrate"
)

// ChangeDoc is a change as the review API sends it: every stored field in
// the encodings airlock.changes uses, so that FromDoc rebuilds exactly the
// Change (and its approval hash) the service read. ApprovalHash,
// RowsAffected and Risk are derived, for clients that only display.
type ChangeDoc struct {
	ID             string          `json:"id"`
	Ticket         string          `json:"ticket"`
	Summary        string          `json:"summary"`
	SQL            string          `json:"sql"`
	SQLFingerprint string          `json:"sql_fingerprint"`
	Statements     json.RawMessage `json:"statements"`
	Scope          string          `json:"scope"`
	ScopeVersion   string          `json:"scope_version"`
	Session        string          `json:"session"`
	Mode           Mode            `json:"mode"`
	GID            string          `json:"gid,omitempty"`
	BranchID       string          `json:"branch_id,omitempty"`
	Report         *migrate.Report `json:"report"`
	Effects        migrate.Effects `json:"effects"`
	Fingerprint    string          `json:"fingerprint"`
	Options        json.RawMessage `json:"options"`
	Status         Status          `json:"status"`
	CreatedAt      time.Time       `json:"created_at"`
	ExpiresAt      time.Time       `json:"expires_at"`
	Reviewer       string          `json:"reviewer,omitempty"`
	DecidedAt      time.Time       `json:"decided_at,omitzero"`
	Reason         string          `json:"reason,omitempty"`
	AppliedBy      string          `json:"applied_by"`
	Reverts        string          `json:"reverts,omitempty"`
	Revert         *RevertPlan     `json:"revert,omitempty"`

	ApprovalHash string `json:"approval_hash"`
	RowsAffected int64  `json:"rows_affected"`
	Risk         string `json:"risk"`
}

// Doc returns c as the review API sends it.
func (c *Change) Doc() (*ChangeDoc, error) {
	statements, err := encodeStatements(c.Statements)
	if err != nil {
		return nil, fmt.Errorf("encode change %s: %w", c.ID, err)
	}
	options, err := encodeOptions(c.Options)
	if err != nil {
		return nil, fmt.Errorf("encode change %s: %w", c.ID, err)
	}
	d := &ChangeDoc{
		ID: c.ID, Ticket: c.Ticket, Summary: c.Summary, SQL: c.SQL, SQLFingerprint: c.SQLFingerprint,
		Statements: statements, Scope: c.Scope, ScopeVersion: c.ScopeVersion, Session: c.Session,
		Mode: c.Mode, GID: c.GID, BranchID: c.BranchID, Report: c.Report, Effects: c.Effects,
		Fingerprint: c.Fingerprint, Options: options, Status: c.Status, CreatedAt: c.CreatedAt,
		ExpiresAt: c.ExpiresAt, Reviewer: c.Reviewer, DecidedAt: c.DecidedAt, Reason: c.Reason,
		AppliedBy: c.AppliedBy, Reverts: c.Reverts, Revert: c.Revert, ApprovalHash: c.ApprovalHash(), Risk: c.Risk(),
	}
	if c.Report != nil {
		for _, st := range c.Report.Statements {
			d.RowsAffected += st.RowsAffected
		}
	}
	return d, nil
}

// FromDoc rebuilds the change d describes. It fails when the derived
// approval hash is not the one d states: what a client shows must be what
// the service approves.
func FromDoc(d *ChangeDoc) (*Change, error) {
	c := &Change{
		ID: d.ID, Ticket: d.Ticket, Summary: d.Summary, SQL: d.SQL, SQLFingerprint: d.SQLFingerprint,
		Scope: d.Scope, ScopeVersion: d.ScopeVersion, Session: d.Session, Mode: d.Mode, GID: d.GID,
		BranchID: d.BranchID, Report: d.Report, Effects: d.Effects, Fingerprint: d.Fingerprint,
		Status: d.Status, CreatedAt: d.CreatedAt, ExpiresAt: d.ExpiresAt, Reviewer: d.Reviewer,
		DecidedAt: d.DecidedAt, Reason: d.Reason, AppliedBy: d.AppliedBy, Reverts: d.Reverts, Revert: d.Revert,
	}
	var err error
	if c.Statements, err = decodeStatements(d.Statements); err != nil {
		return nil, fmt.Errorf("change %s: %w", d.ID, err)
	}
	if len(d.Options) > 0 {
		if c.Options, err = decodeOptions(d.Options); err != nil {
			return nil, fmt.Errorf("change %s: %w", d.ID, err)
		}
	}
	if h := c.ApprovalHash(); d.ApprovalHash != "" && h != d.ApprovalHash {
		return nil, fmt.Errorf("change %s: its content hashes to %s, not the approval hash %s the server sent", d.ID, h, d.ApprovalHash)
	}
	return c, nil
}
