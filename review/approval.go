package review

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/airlock-dev/airlock/scopes"
	"github.com/airlock-dev/airlock/sqlguard"
)

// What a reviewer approves is bound to what commits (docs/architecture.md,
// Approvals): the approval hash covers every field airlock show displays
// that decides what runs or why (ticket, summary, the agent's SQL, the
// statements that execute, the mode, the effects fingerprint, the scope and
// its version), and a commit re-checks the stored statements against the
// scope as an admin applied it, now.

// approvalPrefixMin is the shortest prefix of an approval hash commit
// --expect accepts: 64 bits, far beyond guessing a collision by hand.
const approvalPrefixMin = 16

// approvalDoc is the canonical content an approval hash is taken over.
type approvalDoc struct {
	V            int                 `json:"v"`
	ID           string              `json:"id"`
	Ticket       string              `json:"ticket"`
	Summary      string              `json:"summary"`
	SQL          string              `json:"sql"`
	Statements   []approvalStatement `json:"statements"`
	Scope        string              `json:"scope"`
	ScopeVersion string              `json:"scope_version"`
	Mode         Mode                `json:"mode"`
	GID          string              `json:"gid,omitempty"`
	BranchID     string              `json:"branch_id,omitempty"`
	Effects      string              `json:"effects"`
	Reverts      string              `json:"reverts,omitempty"`
	Revert       *RevertPlan         `json:"revert,omitempty"`
}

type approvalStatement struct {
	Executed string   `json:"executed"`
	Kind     string   `json:"kind"`
	Targets  []string `json:"targets"`
	DoBody   string   `json:"do_body,omitempty"`
}

// ApprovalHash is the hex SHA-256 of the change's reviewed content. Two
// changes that show a reviewer anything different that matters have
// different hashes.
func (c *Change) ApprovalHash() string {
	d := approvalDoc{
		V: 1, ID: c.ID, Ticket: c.Ticket, Summary: c.Summary, SQL: c.SQL,
		Scope: c.Scope, ScopeVersion: c.ScopeVersion, Mode: c.Mode, GID: c.GID, BranchID: c.BranchID,
		Effects: c.Effects.Fingerprint(), Reverts: c.Reverts, Revert: c.Revert,
	}
	for _, s := range c.Statements {
		d.Statements = append(d.Statements, approvalStatement{Executed: executed(s), Kind: s.Kind, Targets: s.Targets, DoBody: s.DoBody})
	}
	b, err := json.Marshal(d)
	if err != nil {
		panic(fmt.Sprintf("review: encode approval: %v", err)) // plain data cannot fail
	}
	sum := sha256.Sum256(append([]byte("airlock-approval-v1\n"), b...))
	return hex.EncodeToString(sum[:])
}

// executed is the text a statement runs as.
func executed(s sqlguard.MigrationStatement) string {
	if s.QualifiedSQL != "" {
		return s.QualifiedSQL
	}
	return s.SQL
}

// MatchesApproval reports whether expect is the change's approval hash or a
// prefix of it at least approvalPrefixMin hex digits long.
func matchesApproval(hash, expect string) bool {
	expect = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(expect), "sha256:")))
	return len(expect) >= approvalPrefixMin && strings.HasPrefix(hash, expect)
}

// ApprovalMismatchError refuses a commit whose --expect names other content
// than the change holds now.
type ApprovalMismatchError struct {
	ID, Expected, Actual string
}

func (e *ApprovalMismatchError) Error() string {
	if len(strings.TrimSpace(strings.TrimPrefix(e.Expected, "sha256:"))) < approvalPrefixMin {
		return fmt.Sprintf("change %s: --expect needs the approval hash airlock show prints (at least %d hex digits); nothing was committed", e.ID, approvalPrefixMin)
	}
	return fmt.Sprintf("change %s is not the change you reviewed: its approval hash is %s, you expected %s; nothing was committed, run airlock show %s again", e.ID, e.Actual, e.Expected, e.ID)
}

// RecheckError refuses a commit whose stored statements the scope, as an
// admin applied it, no longer allows, or whose stored statements are not
// what the guard makes of the change's SQL.
type RecheckError struct {
	ID     string
	Reason string
}

func (e *RecheckError) Error() string {
	return fmt.Sprintf("change %s cannot be committed: %s; nothing was committed", e.ID, e.Reason)
}

// Checker runs the write guard on sql under scope against the database
// behind the store, exactly as migrate_dry_run checks a migration. It
// returns a *sqlguard.Refusal (as the error) when the guard refuses it.
// With catalog false it skips the checks that look objects up in the
// database (which index is on which table, which sequence a table owns):
// a merge replays a branch's log, whose later changes may name objects
// its earlier ones create; the write role's privileges still hold there.
type Checker func(ctx context.Context, scope *scopes.Scope, sql string, catalog bool) (*sqlguard.MigrationPlan, error)

// SetChecker makes every commit and merge re-check the stored statements
// with ch first. The reviewer's CLI always sets one; without one only the
// approval hash and the registry's write role bind a commit.
func (s *Store) SetChecker(ch Checker) { s.checker = ch }

// Approval is what a reviewer binds a commit or merge to.
type Approval struct {
	// Expect, when set, is the approval hash (or a prefix of at least 16
	// hex digits) the reviewer read in airlock show.
	Expect string
}

// verify checks, before anything runs, that c is what the reviewer expects
// and that the scope as applied now allows exactly its stored statements.
func (s *Store) verify(ctx context.Context, q querier, c *Change, a Approval, catalog bool) error {
	if a.Expect != "" {
		if h := c.ApprovalHash(); !matchesApproval(h, a.Expect) {
			return &ApprovalMismatchError{ID: c.ID, Expected: strings.TrimSpace(a.Expect), Actual: h}
		}
	}
	// A revert holds no agent SQL: what it runs is planned again from the
	// capture at commit and must equal what it recorded.
	if s.checker == nil || c.Reverts != "" {
		return nil
	}
	scope, version, err := appliedScope(ctx, q, c.Scope)
	if err != nil {
		return err
	}
	plan, err := s.checker(ctx, scope, c.SQL, catalog)
	var ref *sqlguard.Refusal
	if errors.As(err, &ref) {
		why := "the scope as applied now refuses it: " + ref.Reason
		if version != c.ScopeVersion {
			why = fmt.Sprintf("scope %s changed since the change was recorded (version %s, now %s), and now refuses it: %s",
				c.Scope, orUnknown(c.ScopeVersion), version, ref.Reason)
		}
		return &RecheckError{ID: c.ID, Reason: why}
	}
	if err != nil {
		return fmt.Errorf("change %s: re-check its statements: %w", c.ID, err)
	}
	if len(plan.Statements) != len(c.Statements) {
		return &RecheckError{ID: c.ID, Reason: fmt.Sprintf("its SQL checks to %d statements, but %d are stored: the stored change was altered", len(plan.Statements), len(c.Statements))}
	}
	for i, st := range plan.Statements {
		stored := c.Statements[i]
		if executed(st) != executed(stored) || st.Kind != stored.Kind || st.DoBody != stored.DoBody {
			return &RecheckError{ID: c.ID, Reason: fmt.Sprintf("stored statement %d is not what the guard makes of the change's SQL: the stored change was altered", i+1)}
		}
	}
	return nil
}

// appliedScope reads the scope an admin applied, as the registry holds it.
func appliedScope(ctx context.Context, q querier, name string) (*scopes.Scope, string, error) {
	var doc, version string
	err := q.QueryRow(ctx, "SELECT document::text, version FROM airlock.scopes WHERE name = $1", name).Scan(&doc, &version)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, "", &ScopeNotAppliedError{Scope: name}
	}
	if err != nil {
		return nil, "", fmt.Errorf("read scope %s as applied: %w", name, err)
	}
	scope, err := scopes.Parse([]byte(doc))
	if err != nil {
		return nil, "", fmt.Errorf("scope %s as applied does not load: %w", name, err)
	}
	return scope, version, nil
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
