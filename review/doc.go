// Package review holds changes for a human. Its one job: a change an
// agent's migration made reaches the database only through a reviewer's
// decision, taken exactly once. It records what the migration did
// (pending changes in airlock.changes), lets a reviewer commit or roll
// one back (or merge or discard a branch) exactly once, expires what
// nobody reviewed in time, and turns a committed change into a revert
// that is reviewed the same way.
//
// What it does not do: check SQL (sqlguard), run a migration and measure
// it (migrate), decide what a scope may touch (scopes). It runs migrate's
// plans again as the scope's write role, never with the reviewer's own
// rights (docs/architecture.md, Approvals).
//
// Every decision is a conditional UPDATE of the change's (or branch's)
// row, so that of several racing reviewers exactly one wins and the
// others are told who did.
// The statuses and modes are listed in vocab.go.
//
// # Write modes
//
// The scope's write.mode says how a change is held until its review
// (docs/architecture.md, Write modes).
//
// A replay change was rolled back after its dry run; Commit re-runs its
// stored statements on the reviewer's connection in one transaction and
// commits only if the effects (rows per statement, schema diff) are
// identical. The status update happens inside that same transaction, so
// the data and the "committed" mark commit atomically and exactly one
// racing reviewer wins.
//
// A prepared change is a prepared transaction ("airlock_<uuid>") that keeps
// its locks until COMMIT PREPARED or ROLLBACK PREPARED. Those cannot run
// in a transaction block, so the status and the prepared transaction are
// changed in two steps, ordered so that Reap can always finish an
// interrupted action:
//
//   - apply (the write tool) runs PREPARE TRANSACTION first and only then
//     calls Record. A crash in between leaves a prepared transaction with no
//     row: Reap rolls back such orphans once they are a minute old.
//   - Commit marks the row 'committing' (under a row lock, only if it is
//     pending, unexpired and its prepared transaction exists), then runs
//     COMMIT PREPARED, then marks it 'committed'. Once a row is
//     'committing', airlock only ever COMMITs its transaction: if the gid
//     is still there Reap commits it, if it is gone it was committed, and
//     Reap marks the row committed.
//   - Rollback and expiry mark the row 'rolled_back' or 'expired' first,
//     then run ROLLBACK PREPARED. A prepared transaction whose row is
//     rolled_back, expired or drifted is rolled back by Reap.
//
// The one thing airlock cannot tell apart is a prepared transaction
// finished by hand (psql) while its row was 'committing': Reap then marks
// it committed.
//
// A branch change was committed on the session's own branch database
// (branch.go); the reviewer merges the branch's whole change log into the
// source in one transaction through the replay path (merge.go), the
// write tables' schema after the replay compared with the branch's, or
// discards the branch.
//
// # Undo
//
// A replay commit or a merge of a scope with write.undo on records the
// rows it changed (capture.go); airlock revert turns the capture into a
// new pending change that a reviewer commits like any other (revertplan.go,
// revertcommit.go; docs/architecture.md, Undo).
package review
