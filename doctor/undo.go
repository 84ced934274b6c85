package doctor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/airlock-dev/airlock/scopes"
)

// undoWarnBytes is the size of the undo captures worth a WARN: below it
// they are noise next to the tables they undo, above it someone should
// decide whether the retention is worth the disk.
const undoWarnBytes = 1 << 30

// undoSizesSQL reads the size of the capture tables and of the tables kept
// in airlock_trash from the catalog alone. pg_class, pg_namespace and
// pg_total_relation_size need no privilege on the airlock schema, where
// naming airlock.undo_rows (or to_regclass('airlock.undo_rows')) is a
// permission error for a login without USAGE on it, and doctor runs as
// any login. pg_total_relation_size counts the indexes and TOAST too; a
// partitioned table has no storage of its own, so its partitions are
// summed.
const undoSizesSQL = `
WITH undo AS (
	SELECT c.oid, c.relname FROM pg_catalog.pg_class c
	JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
	WHERE n.nspname = 'airlock' AND c.relname IN ('undo_rows', 'undo_captures') AND c.relkind = 'r'
), trash AS (
	SELECT CASE WHEN c.relkind = 'p'
		THEN (SELECT sum(pg_catalog.pg_total_relation_size(t.relid)) FROM pg_catalog.pg_partition_tree(c.oid) t)
		ELSE pg_catalog.pg_total_relation_size(c.oid) END AS bytes
	FROM pg_catalog.pg_class c
	JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
	WHERE n.nspname = 'airlock_trash' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
)
SELECT current_user,
	EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = 'airlock'),
	(SELECT count(*) FROM undo)::int,
	EXISTS (SELECT 1 FROM undo WHERE relname = 'undo_captures'),
	(SELECT coalesce(sum(pg_catalog.pg_total_relation_size(oid)), 0) FROM undo)::bigint,
	EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = 'airlock_trash'),
	(SELECT count(*) FROM trash)::int,
	(SELECT coalesce(sum(bytes), 0) FROM trash)::bigint`

// undoCountsSQL counts the captures not purged yet. Only a login that may
// read airlock.undo_captures (a reviewer, an admin) gets an answer.
const undoCountsSQL = `
SELECT count(*), count(*) FILTER (WHERE expires_at <= now()), min(expires_at)
FROM airlock.undo_captures WHERE purged_at IS NULL`

// undoFacts are what the undo captures check judges.
type undoFacts struct {
	write, on bool // the scope has a write section; write.undo is on
	login     string
	schema    bool // the airlock schema exists
	tables    int  // how many of undo_rows and undo_captures exist
	captures  bool // airlock.undo_captures exists
	bytes     int64
	// counted: the login could read airlock.undo_captures, and live,
	// expired and earliest say what it holds.
	counted       bool
	live, expired int64 // not purged; of those, past their expiry
	earliest      *time.Time
	trash         bool // the airlock_trash schema exists
	trashTables   int
	trashBytes    int64
}

func (d *doctor) undo(ctx context.Context) Check {
	w := d.scope.Write
	f := undoFacts{write: w != nil, on: w != nil && w.Undo.On()}
	if !f.on {
		return judgeUndo(f, d.opt.scopeFile())
	}
	err := d.pool.QueryRow(ctx, undoSizesSQL).Scan(&f.login, &f.schema, &f.tables, &f.captures, &f.bytes,
		&f.trash, &f.trashTables, &f.trashBytes)
	if err != nil {
		return couldNotCheck(CheckUndo, fmt.Errorf("read the size of the undo captures: %w", err))
	}
	if f.captures {
		// A query of its own, outside any transaction: the permission
		// error of a login that may not read the captures aborts nothing
		// else, and only means the count is not shown.
		err = d.pool.QueryRow(ctx, undoCountsSQL).Scan(&f.live, &f.expired, &f.earliest)
		var pgErr *pgconn.PgError
		switch {
		case errors.As(err, &pgErr) && pgErr.Code == pgerrcode.InsufficientPrivilege:
		case err != nil:
			return couldNotCheck(CheckUndo, fmt.Errorf("count the undo captures: %w", err))
		default:
			f.counted = true
		}
	}
	return judgeUndo(f, d.opt.scopeFile())
}

// judgeUndo reports the room the undo captures take. It never FAILs on
// what it finds: captures cost disk, not safety, and a login that may not
// read them is the rule, not a fault (agents and services may not).
func judgeUndo(f undoFacts, scopeFile string) Check {
	c := Check{Name: CheckUndo, Status: OK}
	switch {
	case !f.write:
		c.Detail = "not needed: the scope has no write section"
		return c
	case !f.on:
		c.Detail = "not needed: write.undo is off"
		return c
	}
	var parts []string
	switch {
	case !f.schema:
		parts = append(parts, "no captures yet: the airlock schema does not exist (airlock scope apply and airlock serve create it)")
	case f.tables == 0:
		parts = append(parts, "no captures yet: airlock.undo_rows and airlock.undo_captures do not exist (airlock scope apply and airlock serve create them)")
	default:
		// The tables hold every scope's captures in the database.
		parts = append(parts, fmt.Sprintf("airlock.undo_rows and airlock.undo_captures take %s (every scope's, with indexes)", formatBytes(f.bytes)))
		switch {
		case !f.counted:
			parts = append(parts, f.login+" may not read the captures, so they are not counted (a reviewer login may)")
		case f.live == 0:
			parts = append(parts, "no live captures")
		default:
			s := fmt.Sprintf("%d live %s, the earliest expiry %s", f.live, plural(int(f.live), "capture", "captures"),
				f.earliest.UTC().Format("2006-01-02 15:04 UTC"))
			if f.expired > 0 {
				s += fmt.Sprintf(" (%d past %s retention, left for the reaper to purge)", f.expired, plural(int(f.expired), "its", "their"))
			}
			parts = append(parts, s)
		}
	}
	if f.trash {
		parts = append(parts, fmt.Sprintf("airlock_trash holds %d %s, %s", f.trashTables, plural(f.trashTables, "table", "tables"), formatBytes(f.trashBytes)))
	}
	c.Detail = strings.Join(parts, "; ")
	if f.bytes+f.trashBytes > undoWarnBytes {
		c.Status = WARN
		c.Detail += fmt.Sprintf(": more than %s kept for airlock revert", formatBytes(undoWarnBytes))
		c.Fix = fmt.Sprintf("make sure the reaper runs (airlock serve purges the captures past their retention every 30 seconds, airlock reap does it once); "+
			"to keep less, shorten write.undo.retention in %s (e.g. \"3d\"; from %dh to %dd) and run airlock scope apply --scope %s: later captures expire sooner; "+
			"VACUUM airlock.undo_rows lets PostgreSQL reuse the purged rows' space (VACUUM FULL returns it to the system, under an exclusive lock)",
			scopeFile, int(scopes.MinUndoRetention.Hours()), int(scopes.MaxUndoRetention.Hours()/24), scopeFile)
	}
	return c
}

// formatBytes writes n in binary units, e.g. "8.0 KiB", "1.5 GiB".
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d %s", n, plural(int(n), "byte", "bytes"))
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}
