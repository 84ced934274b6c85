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
CREATE INDEX IF NOT EXISTS branches_live ON airlock.branches (scope) WHERE status = 'live';
-- The scopes an admin applied, as applied: what a reviewer's commit checks
-- the stored statements against and runs them as (docs/architecture.md,
-- Approvals). Only the admin who runs airlock scope apply writes here.
CREATE TABLE IF NOT EXISTS airlock.scopes (
	name       text PRIMARY KEY,
	document   jsonb NOT NULL,
	version    text NOT NULL,
	read_role  name NOT NULL,
	write_role name,
	applied_at timestamptz NOT NULL DEFAULT now(),
	applied_by name NOT NULL DEFAULT session_user
);
-- Who applied a change or made a branch: the login the database saw, set
-- by the database (the triggers below), never by the writer.
ALTER TABLE airlock.changes ADD COLUMN IF NOT EXISTS applied_by name NOT NULL DEFAULT session_user;
ALTER TABLE airlock.branches ADD COLUMN IF NOT EXISTS created_by name NOT NULL DEFAULT session_user;
-- The version of the scope file the service checked a change under: part
-- of what the reviewer approves (docs/architecture.md, Approvals).
ALTER TABLE airlock.changes ADD COLUMN IF NOT EXISTS scope_version text NOT NULL DEFAULT '';
-- Approvals of changes and branch merges (docs/architecture.md,
-- Reviewers): a change commits once write.approvals distinct reviewers
-- approved exactly what show displays (approval, its approval hash).
CREATE TABLE IF NOT EXISTS airlock.approvals (
	subject     uuid NOT NULL,
	kind        text NOT NULL CHECK (kind IN ('change', 'branch')),
	reviewer    text NOT NULL CHECK (reviewer <> ''),
	login       name NOT NULL DEFAULT session_user,
	approval    text NOT NULL,
	approved_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (subject, reviewer, approval)
);
-- Undo (docs/architecture.md, Undo): what each committed change did, for
-- airlock revert. Rows are written by the capture triggers on the write
-- tables (airlock.capture_rows, SECURITY DEFINER), inside the commit's own
-- transaction, so a capture exists exactly when its change does.
CREATE TABLE IF NOT EXISTS airlock.undo_rows (
	change_id uuid NOT NULL,
	seq       bigint GENERATED ALWAYS AS IDENTITY,
	stmt      int NOT NULL,
	relation  text NOT NULL,
	side      "char" NOT NULL CHECK (side IN ('b', 'a')),
	image     jsonb NOT NULL,
	PRIMARY KEY (change_id, seq)
);
CREATE TABLE IF NOT EXISTS airlock.undo_captures (
	change_id    uuid PRIMARY KEY,
	scope        text NOT NULL,
	captured_at  timestamptz NOT NULL DEFAULT now(),
	expires_at   timestamptz NOT NULL,
	irreversible text,
	purged_at    timestamptz
);
ALTER TABLE airlock.undo_captures ADD COLUMN IF NOT EXISTS trash jsonb;
-- What committed changes dropped, until their capture expires
-- (migrate.TrashSchema): write roles get USAGE and CREATE at scope apply.
CREATE SCHEMA IF NOT EXISTS airlock_trash;
REVOKE ALL ON SCHEMA airlock_trash FROM PUBLIC;
ALTER TABLE airlock.changes ADD COLUMN IF NOT EXISTS reverts uuid;
ALTER TABLE airlock.changes ADD COLUMN IF NOT EXISTS revert jsonb;
` + decisionGuard + approvalGuard + eventTriggers + undoFunctions

// decisionGuard is the database's own rule on decisions (docs/architecture.md,
// Approvals). A recorded change or branch is immutable but for its
// status, decision fields and (branches) dropped flag. Expiry, and the
// last step of a decision already taken (committing to committed), may be
// done by any login with UPDATE; a decision may not be taken by the login
// that applied the change or made the branch, by a member of it, nor by
// any agent or service login (members of airlock_agents or
// airlock_services). A superuser is exempt: nothing binds one (it could
// drop the trigger), and doctor FAILs when an agent or service login is one.
const decisionGuard = `
CREATE OR REPLACE FUNCTION airlock.may_decide(applier name) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
	who name := session_user;
BEGIN
	IF (SELECT rolsuper FROM pg_roles WHERE rolname = who) THEN
		RETURN NULL;
	END IF;
	IF who = applier OR EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = applier AND pg_has_role(who, r.oid, 'MEMBER')) THEN
		RETURN format('%I applied it (or can act as %I, who did)', who, applier);
	END IF;
	IF EXISTS (SELECT 1 FROM pg_roles g WHERE g.rolname IN ('airlock_agents', 'airlock_services') AND pg_has_role(who, g.oid, 'MEMBER')) THEN
		RETURN format('%I is an agent or service login', who);
	END IF;
	RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION airlock.guard_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
	why text;
BEGIN
	IF TG_OP = 'INSERT' THEN
		NEW.applied_by := session_user;
		IF NEW.status <> 'pending' OR NEW.reviewer IS NOT NULL OR NEW.decided_at IS NOT NULL THEN
			RAISE EXCEPTION 'airlock: a change is recorded pending and undecided' USING ERRCODE = '42501';
		END IF;
		-- Reviewers record reverts; only the service (or a superuser)
		-- records what an agent applied.
		IF NEW.reverts IS NULL AND NOT (SELECT rolsuper FROM pg_roles WHERE rolname = session_user)
			AND NOT EXISTS (SELECT 1 FROM pg_roles g WHERE g.rolname = 'airlock_services' AND pg_has_role(session_user, g.oid, 'MEMBER')) THEN
			RAISE EXCEPTION 'airlock: only the service records changes; a reviewer records reverts (airlock revert)' USING ERRCODE = '42501';
		END IF;
		RETURN NEW;
	END IF;
	IF (NEW.id, NEW.ticket, NEW.summary, NEW.sql, NEW.sql_fingerprint, NEW.statements, NEW.scope, NEW.session,
		NEW.mode, NEW.gid, NEW.report, NEW.effects, NEW.fingerprint, NEW.options, NEW.created_at,
		NEW.branch_id, NEW.applied_by, NEW.scope_version, NEW.reverts, NEW.revert)
		IS DISTINCT FROM (OLD.id, OLD.ticket, OLD.summary, OLD.sql, OLD.sql_fingerprint, OLD.statements, OLD.scope, OLD.session,
		OLD.mode, OLD.gid, OLD.report, OLD.effects, OLD.fingerprint, OLD.options, OLD.created_at,
		OLD.branch_id, OLD.applied_by, OLD.scope_version, OLD.reverts, OLD.revert) THEN
		RAISE EXCEPTION 'airlock: change %: a recorded change cannot be altered, only decided', OLD.id USING ERRCODE = '42501';
	END IF;
	-- Shortening a review window is harmless; extending one is a decision
	-- nobody may take.
	IF NEW.expires_at > OLD.expires_at THEN
		RAISE EXCEPTION 'airlock: change %: its review window cannot be extended', OLD.id USING ERRCODE = '42501';
	END IF;
	IF NEW.status = OLD.status THEN
		RETURN NEW;
	END IF;
	IF OLD.status NOT IN ('pending', 'committing') THEN
		RAISE EXCEPTION 'airlock: change % is already %', OLD.id, OLD.status USING ERRCODE = '42501';
	END IF;
	IF (OLD.status = 'pending' AND NEW.status = 'expired') OR (OLD.status = 'committing' AND NEW.status = 'committed') THEN
		RETURN NEW;
	END IF;
	-- A revert is a reviewer's own undo of a committed change: its
	-- recorder may commit it; agents and services still may not.
	why := airlock.may_decide(CASE WHEN OLD.reverts IS NULL THEN OLD.applied_by END);
	IF why IS NOT NULL THEN
		RAISE EXCEPTION 'airlock: change %: % may not decide on it: %', OLD.id, session_user, why
			USING ERRCODE = '42501', HINT = 'decide as a reviewer login of your own (airlock scope apply --reviewer LOGIN)';
	END IF;
	RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS changes_guard ON airlock.changes;
CREATE TRIGGER changes_guard BEFORE INSERT OR UPDATE ON airlock.changes
	FOR EACH ROW EXECUTE FUNCTION airlock.guard_change();
CREATE OR REPLACE FUNCTION airlock.guard_branch() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
	why text;
BEGIN
	IF TG_OP = 'INSERT' THEN
		NEW.created_by := session_user;
		IF NEW.status <> 'live' OR NEW.reviewer IS NOT NULL OR NEW.decided_at IS NOT NULL THEN
			RAISE EXCEPTION 'airlock: a branch is recorded live and undecided' USING ERRCODE = '42501';
		END IF;
		RETURN NEW;
	END IF;
	IF (NEW.id, NEW.session, NEW.scope, NEW.database, NEW.strategy, NEW.tables, NEW.created_at, NEW.created_by)
		IS DISTINCT FROM (OLD.id, OLD.session, OLD.scope, OLD.database, OLD.strategy, OLD.tables, OLD.created_at, OLD.created_by) THEN
		RAISE EXCEPTION 'airlock: branch %: a recorded branch cannot be altered, only decided', OLD.id USING ERRCODE = '42501';
	END IF;
	IF NEW.expires_at > OLD.expires_at THEN
		RAISE EXCEPTION 'airlock: branch %: its lifetime cannot be extended', OLD.id USING ERRCODE = '42501';
	END IF;
	IF NEW.status = OLD.status THEN
		RETURN NEW;
	END IF;
	IF OLD.status <> 'live' THEN
		RAISE EXCEPTION 'airlock: branch % is already %', OLD.id, OLD.status USING ERRCODE = '42501';
	END IF;
	IF NEW.status = 'expired' THEN
		RETURN NEW;
	END IF;
	why := airlock.may_decide(OLD.created_by);
	IF why IS NOT NULL THEN
		RAISE EXCEPTION 'airlock: branch %: % may not decide on it: %', OLD.id, session_user, why
			USING ERRCODE = '42501', HINT = 'decide as a reviewer login of your own (airlock scope apply --reviewer LOGIN)';
	END IF;
	RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS branches_guard ON airlock.branches;
CREATE TRIGGER branches_guard BEFORE INSERT OR UPDATE ON airlock.branches
	FOR EACH ROW EXECUTE FUNCTION airlock.guard_branch();
REVOKE ALL ON FUNCTION airlock.may_decide(name) FROM PUBLIC;
REVOKE ALL ON FUNCTION airlock.guard_change() FROM PUBLIC;
REVOKE ALL ON FUNCTION airlock.guard_branch() FROM PUBLIC;`

// approvalGuard keeps approvals honest in the database: an approval names
// the login that recorded it (set here, never by the writer), is taken only
// on a pending change or a live branch, never by a login that may not
// decide on it (the applier, an agent or a service login: the decision
// guard's rule), and is never altered or withdrawn (a reviewer who changes
// their mind rejects the change instead).
const approvalGuard = `
CREATE OR REPLACE FUNCTION airlock.guard_approval() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
	applier name;
	open boolean;
	why text;
BEGIN
	IF TG_OP <> 'INSERT' THEN
		RAISE EXCEPTION 'airlock: an approval cannot be altered or withdrawn; reject the change instead' USING ERRCODE = '42501';
	END IF;
	NEW.login := session_user;
	NEW.approved_at := now();
	IF NEW.kind = 'change' THEN
		SELECT CASE WHEN c.reverts IS NULL THEN c.applied_by ELSE ''::name END, c.status = 'pending' AND c.expires_at > now() INTO applier, open
			FROM airlock.changes c WHERE c.id = NEW.subject;
	ELSE
		SELECT b.created_by, b.status = 'live' INTO applier, open
			FROM airlock.branches b WHERE b.id = NEW.subject;
	END IF;
	IF applier IS NULL THEN
		RAISE EXCEPTION 'airlock: % % does not exist', NEW.kind, NEW.subject USING ERRCODE = '42501';
	END IF;
	IF NOT open THEN
		RAISE EXCEPTION 'airlock: % % is no longer open for approval', NEW.kind, NEW.subject USING ERRCODE = '42501';
	END IF;
	why := airlock.may_decide(applier);
	IF why IS NOT NULL THEN
		RAISE EXCEPTION 'airlock: % %: % may not approve it: %', NEW.kind, NEW.subject, session_user, why
			USING ERRCODE = '42501', HINT = 'approve as a reviewer of your own (airlock scope apply --reviewer LOGIN, or a reviewer token on the review page)';
	END IF;
	RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS approvals_guard ON airlock.approvals;
CREATE TRIGGER approvals_guard BEFORE INSERT OR UPDATE OR DELETE ON airlock.approvals
	FOR EACH ROW EXECUTE FUNCTION airlock.guard_approval();
REVOKE ALL ON FUNCTION airlock.guard_approval() FROM PUBLIC;`

// undoFunctions capture rows and purge captures. capture_rows does
// nothing unless the transaction set airlock.capture (migrate.Options.Capture,
// on commit runs only); it is the trigger function of every write table of
// a scope with undo on (package roles installs the triggers). Rows are
// taken whole as alias.*: a bare alias would mean a column of that name.
const undoFunctions = `
CREATE OR REPLACE FUNCTION airlock.capture_rows() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
	change text := current_setting('airlock.capture', true);
	stmt int := coalesce(nullif(current_setting('airlock.capture_stmt', true), ''), '0')::int;
	rel text := quote_ident(TG_TABLE_SCHEMA) || '.' || quote_ident(TG_TABLE_NAME);
BEGIN
	IF change IS NULL OR change = '' THEN
		RETURN NULL;
	END IF;
	IF TG_OP = 'TRUNCATE' THEN
		EXECUTE format('INSERT INTO airlock.undo_rows (change_id, stmt, relation, side, image) SELECT $1::uuid, $2, $3, ''b'', to_jsonb(t.*) FROM ONLY %s t', rel)
			USING change, stmt, rel;
		RETURN NULL;
	END IF;
	IF TG_OP IN ('UPDATE', 'DELETE') THEN
		INSERT INTO airlock.undo_rows (change_id, stmt, relation, side, image)
			SELECT change::uuid, stmt, rel, 'b', to_jsonb(o.*) FROM old_rows o;
	END IF;
	IF TG_OP IN ('INSERT', 'UPDATE') THEN
		INSERT INTO airlock.undo_rows (change_id, stmt, relation, side, image)
			SELECT change::uuid, stmt, rel, 'a', to_jsonb(n.*) FROM new_rows n;
	END IF;
	RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION airlock.capture_rows() FROM PUBLIC;
CREATE OR REPLACE FUNCTION airlock.purge_undo() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
	n bigint;
	t text;
BEGIN
	-- The trash goes first, one table at a time: a table something now
	-- depends on stays (with a warning) rather than stop the purge.
	FOR t IN SELECT e->>'trash' FROM airlock.undo_captures c, jsonb_array_elements(c.trash) e
		WHERE c.expires_at <= now() AND c.purged_at IS NULL AND jsonb_typeof(c.trash) = 'array'
	LOOP
		BEGIN
			EXECUTE format('DROP TABLE IF EXISTS airlock_trash.%I', t);
		EXCEPTION WHEN others THEN
			RAISE WARNING 'airlock: could not purge airlock_trash.%: %', t, SQLERRM;
		END;
	END LOOP;
	DELETE FROM airlock.undo_rows r USING airlock.undo_captures c
		WHERE r.change_id = c.change_id AND c.expires_at <= now();
	UPDATE airlock.undo_captures SET purged_at = now() WHERE expires_at <= now() AND purged_at IS NULL;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END $$;
-- Purging only what has expired is harmless whoever calls it: every
-- principal's reaper may (each holds USAGE on the schema, nothing else).
GRANT EXECUTE ON FUNCTION airlock.purge_undo() TO PUBLIC;`

// EventsChannel is the NOTIFY channel on which the database announces
// every new change, decision, expiry and approval, whoever made it (the
// service, a reviewer's CLI, the review page, the reaper): the payload is
// {"kind": "change"|"branch"|"approval", "id": …, "status": …}. The
// service listens and sends its notifications from it; a payload is only a
// hint to read the row, never trusted as an event itself (any login may
// NOTIFY on any channel).
const EventsChannel = "airlock_events"

const eventTriggers = `
CREATE OR REPLACE FUNCTION airlock.announce() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
	IF TG_TABLE_NAME = 'approvals' THEN
		PERFORM pg_notify('` + EventsChannel + `', json_build_object('kind', 'approval', 'id', NEW.subject, 'status', NEW.kind)::text);
	ELSIF TG_OP = 'INSERT' OR NEW.status IS DISTINCT FROM OLD.status THEN
		PERFORM pg_notify('` + EventsChannel + `', json_build_object('kind', CASE TG_TABLE_NAME WHEN 'changes' THEN 'change' ELSE 'branch' END,
			'id', NEW.id, 'status', NEW.status)::text);
	END IF;
	RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS changes_announce ON airlock.changes;
CREATE TRIGGER changes_announce AFTER INSERT OR UPDATE ON airlock.changes
	FOR EACH ROW EXECUTE FUNCTION airlock.announce();
DROP TRIGGER IF EXISTS branches_announce ON airlock.branches;
CREATE TRIGGER branches_announce AFTER UPDATE ON airlock.branches
	FOR EACH ROW EXECUTE FUNCTION airlock.announce();
DROP TRIGGER IF EXISTS approvals_announce ON airlock.approvals;
CREATE TRIGGER approvals_announce AFTER INSERT ON airlock.approvals
	FOR EACH ROW EXECUTE FUNCTION airlock.announce();
REVOKE ALL ON FUNCTION airlock.announce() FROM PUBLIC;`

// EnsureSchema creates airlock's schema, the audit tables and
// airlock.changes when missing. Safe to call concurrently and repeatedly.
func EnsureSchema(ctx context.Context, pool *pgxpool.Pool) error {
	if err := audit.EnsureSchema(ctx, pool, Schema); err != nil {
		return fmt.Errorf("review: ensure schema: %w", err)
	}
	return nil
}
