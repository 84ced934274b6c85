package review

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlock-dev/airlock/audit"
)

// Schema is the DDL of airlock.changes, applied idempotently after
// audit.Schema (which creates the airlock schema).
//
// status 'committing' is internal and transitional: a prepared change a
// reviewer decided to commit, whose COMMIT PREPARED has not been confirmed
// yet. Reap finishes it (see Reap).
const Schema = `
CREATE TABLE IF NOT EXISTS airlock.changes (
	id              uuid PRIMARY KEY,
	ticket          text NOT NULL,
	summary         text NOT NULL,
	sql             text NOT NULL,
	sql_fingerprint text NOT NULL DEFAULT '',
	statements      jsonb NOT NULL,
	scope           text NOT NULL,
	session         text NOT NULL DEFAULT '',
	mode            text NOT NULL CONSTRAINT changes_mode_check CHECK (mode IN ('replay', 'prepared', 'branch')),
	gid             text UNIQUE,
	report          jsonb NOT NULL,
	effects         jsonb NOT NULL,
	fingerprint     text NOT NULL,
	options         jsonb NOT NULL DEFAULT '{}',
	status          text NOT NULL DEFAULT 'pending'
	                CHECK (status IN ('pending', 'committing', 'committed', 'rolled_back', 'expired', 'drifted')),
	created_at      timestamptz NOT NULL DEFAULT now(),
	expires_at      timestamptz NOT NULL,
	reviewer        text,
	decided_at      timestamptz,
	reason          text,
	CHECK ((mode = 'prepared') = (gid IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS changes_open ON airlock.changes (created_at)
	WHERE status IN ('pending', 'committing');
ALTER TABLE airlock.changes ADD COLUMN IF NOT EXISTS branch_id uuid;
DO $$
BEGIN
	-- A schema made before branch mode allowed only replay and prepared.
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint
		WHERE conrelid = 'airlock.changes'::regclass AND conname = 'changes_mode_check'
		AND pg_catalog.pg_get_constraintdef(oid) LIKE '%branch%') THEN
		ALTER TABLE airlock.changes DROP CONSTRAINT IF EXISTS changes_mode_check;
		ALTER TABLE airlock.changes ADD CONSTRAINT changes_mode_check CHECK (mode IN ('replay', 'prepared', 'branch'));
	END IF;
END $$;
CREATE INDEX IF NOT EXISTS changes_branch ON airlock.changes (branch_id) WHERE branch_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS airlock.branches (
	id         uuid PRIMARY KEY,
	session    text NOT NULL,
	scope      text NOT NULL,
	database   text NOT NULL UNIQUE,
	strategy   text NOT NULL,
	tables     text[] NOT NULL,
	status     text NOT NULL DEFAULT 'live'
	           CHECK (status IN ('live', 'merged', 'discarded', 'expired')),
	created_at timestamptz NOT NULL DEFAULT now(),
	expires_at timestamptz NOT NULL,
	reviewer   text,
	decided_at timestamptz,
	reason     text,
	dropped    boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS branches_live ON airlock.branches (scope) WHERE status = 'live';`

// EnsureSchema creates airlock's schema, the audit tables and
// airlock.changes when missing. Safe to call concurrently and repeatedly.
func EnsureSchema(ctx context.Context, pool *pgxpool.Pool) error {
	if err := audit.EnsureSchema(ctx, pool, Schema); err != nil {
		return fmt.Errorf("review: ensure schema: %w", err)
	}
	return nil
}
