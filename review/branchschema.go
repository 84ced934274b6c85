package review

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/airlock-dev/airlock/internal/pgbin"
)

// The schema strategy: an empty database holding copies of the in-scope
// tables' definitions, made with pg_dump --schema-only when it can be
// found (next to initdb, or on PATH) and from the catalog otherwise,
// optionally with a sample of each table's rows copied through the client.
// It works while other sessions use the source, unlike the template
// strategy. The copy carries no grants (pg_dump runs with
// --no-privileges): the caller runs roles.Apply on the branch.

// inScope is one existing in-scope relation of the source.
type inScope struct {
	schema, name string
	kind         string // pg_class.relkind
}

func (t inScope) qualified() string { return pgx.Identifier{t.schema, t.name}.Sanitize() }

func (s *Store) copySchema(ctx context.Context, name string, spec BranchSpec) error {
	want := slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(spec.ReadTables), spec.WriteTables...))))
	rows, err := s.pool.Query(ctx, `
		SELECT n.nspname, c.relname, c.relkind::text
		FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname || '.' || c.relname = ANY($1) AND c.relkind IN ('r', 'p', 'v', 'm')
		ORDER BY 1, 2`, want)
	if err != nil {
		return fmt.Errorf("list the in-scope tables: %w", err)
	}
	tables, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (inScope, error) {
		var t inScope
		return t, r.Scan(&t.schema, &t.name, &t.kind)
	})
	if err != nil {
		return fmt.Errorf("list the in-scope tables: %w", err)
	}
	cfg := s.pool.Config().ConnConfig.Copy()
	cfg.Database = name
	branch, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect to the branch: %w", err)
	}
	defer branch.Close(context.WithoutCancel(ctx))
	schemas := map[string]bool{}
	for _, t := range tables {
		if !schemas[t.schema] {
			schemas[t.schema] = true
			if _, err := branch.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{t.schema}.Sanitize()); err != nil {
				return fmt.Errorf("create schema %s: %w", t.schema, err)
			}
		}
	}
	if len(tables) == 0 {
		return nil
	}
	types, err := s.typeDefinitions(ctx, tables)
	if err != nil {
		return err
	}
	for _, st := range types.schemas {
		if _, err := branch.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{st}.Sanitize()); err != nil {
			return fmt.Errorf("create schema %s: %w", st, err)
		}
	}
	if err := runScript(ctx, branch, types.stmts); err != nil {
		return fmt.Errorf("create the tables' types: %w", err)
	}
	pre, post, dumpErr := s.dumpSchema(ctx, tables)
	if dumpErr != nil {
		s.logger.Load().Info("review: pg_dump unavailable for a schema branch; copying definitions from the catalog", "err", dumpErr)
		pre, post, err = s.catalogSchema(ctx, tables)
		if err != nil {
			return err
		}
	}
	if err := runScript(ctx, branch, pre); err != nil {
		return fmt.Errorf("create the tables: %w", err)
	}
	if spec.SampleRows > 0 {
		if err := s.copySample(ctx, branch, tables, spec.SampleRows); err != nil {
			return err
		}
	}
	if err := runScript(ctx, branch, post); err != nil {
		return fmt.Errorf("create the constraints and indexes: %w", err)
	}
	return s.copySequences(ctx, branch, tables)
}

// copySequences sets the branch's copies of the tables' own sequences
// (serial and identity columns) to the source's positions, so that rows
// the agent inserts do not collide with sampled ones.
func (s *Store) copySequences(ctx context.Context, branch *pgx.Conn, tables []inScope) error {
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = t.qualified()
	}
	type seq struct {
		name   string
		last   int64
		called bool
	}
	var seqs []seq
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL search_path = pg_catalog"); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `
			SELECT d.objid::regclass::text
			FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class c ON c.oid = d.objid AND c.relkind = 'S'
			WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.refclassid = 'pg_catalog.pg_class'::regclass
			AND d.deptype IN ('a', 'i')
			AND d.refobjid IN (SELECT pg_catalog.to_regclass(x) FROM pg_catalog.unnest($1::text[]) AS x)`, names)
		if err != nil {
			return err
		}
		list, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		for _, name := range list {
			sq := seq{name: name}
			// name is the catalog's own rendering of a regclass.
			if err := tx.QueryRow(ctx, "SELECT last_value, is_called FROM "+name).Scan(&sq.last, &sq.called); err != nil {
				return err
			}
			seqs = append(seqs, sq)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read the tables' sequences: %w", err)
	}
	for _, sq := range seqs {
		if _, err := branch.Exec(ctx, "SELECT pg_catalog.setval($1::regclass, $2, $3)", sq.name, sq.last, sq.called); err != nil {
			return fmt.Errorf("set sequence %s on the branch: %w", sq.name, err)
		}
	}
	return nil
}

// findPgDump finds pg_dump; a variable so that tests can take it away
// and exercise the catalog fallback.
//
// The store looks pg_dump up itself rather than taking a path in its
// options: every caller would find it the same way (next to the server
// binaries, for a matching version, else on PATH), and a missing one is
// not an error, only the catalog fallback. The lookup is pgbin's, which
// the cluster manager shares, so that review does not depend on the
// cluster manager.
var findPgDump = lookPgDump

func lookPgDump() (string, error) { return pgbin.Program("pg_dump") }

// dumpSchema returns pg_dump's pre-data and post-data sections for tables.
func (s *Store) dumpSchema(ctx context.Context, tables []inScope) (pre, post []string, err error) {
	bin, err := findPgDump()
	if err != nil {
		return nil, nil, err
	}
	cc := s.pool.Config().ConnConfig
	env := append(os.Environ(),
		"PGHOST="+cc.Host, "PGPORT="+strconv.Itoa(int(cc.Port)), "PGUSER="+cc.User,
		"PGPASSWORD="+cc.Password, "PGDATABASE="+cc.Database, "PGCONNECT_TIMEOUT=10")
	if cc.TLSConfig == nil {
		env = append(env, "PGSSLMODE=disable")
	} else {
		env = append(env, "PGSSLMODE=require")
	}
	dump := func(section string) ([]string, error) {
		args := []string{"--no-owner", "--no-privileges", "--section=" + section}
		for _, t := range tables {
			args = append(args, "-t", t.qualified())
		}
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("pg_dump: %w: %s", err, strings.TrimSpace(stderr.String()))
		}
		return splitScript(string(out))
	}
	if pre, err = dump("pre-data"); err != nil {
		return nil, nil, err
	}
	if post, err = dump("post-data"); err != nil {
		return nil, nil, err
	}
	return pre, slices.DeleteFunc(post, isCaptureTrigger), nil
}

// isCaptureTrigger reports whether st creates one of undo's capture
// triggers (docs/architecture.md, Undo). A branch records nothing to
// revert and has no airlock schema, so it gets none: the merge, on the
// source, captures.
func isCaptureTrigger(st string) bool {
	tree, err := pg_query.Parse(st)
	if err != nil || len(tree.Stmts) != 1 {
		return false
	}
	ct := tree.Stmts[0].Stmt.GetCreateTrigStmt()
	if ct == nil || len(ct.Funcname) != 2 {
		return false
	}
	return ct.Funcname[0].GetString_().GetSval() == "airlock" && ct.Funcname[1].GetString_().GetSval() == "capture_rows"
}

// splitScript turns a pg_dump script into statements: psql meta-commands
// (whole lines starting with a backslash, e.g. \restrict) are psql's, not
// the server's, and are dropped; the rest is split by pg_query.
func splitScript(script string) ([]string, error) {
	var kept []string
	for _, line := range strings.Split(script, "\n") {
		if !strings.HasPrefix(line, `\`) {
			kept = append(kept, line)
		}
	}
	stmts, err := pg_query.SplitWithParser(strings.Join(kept, "\n"), true)
	if err != nil {
		return nil, fmt.Errorf("split pg_dump's output: %w", err)
	}
	return stmts, nil
}

// runScript runs statements on the branch. A statement about a table the
// branch does not have (a foreign key to a table outside the scope) is
// skipped: the branch holds only the in-scope tables. A constraint the
// sampled rows violate (a foreign key whose referenced rows were not
// sampled) is added NOT VALID: the branch keeps the definition, which is
// what a merge compares, and checks every new row.
func runScript(ctx context.Context, conn *pgx.Conn, stmts []string) error {
	for _, st := range stmts {
		if strings.TrimSpace(st) == "" {
			continue
		}
		_, err := conn.Exec(ctx, st)
		if err != nil && isAlterTable(st) {
			switch sqlstate(err) {
			case pgerrcode.UndefinedTable:
				continue
			case pgerrcode.ForeignKeyViolation, pgerrcode.CheckViolation:
				if nv, nerr := notValid(st); nerr == nil {
					_, err = conn.Exec(ctx, nv)
				}
			}
		}
		if err != nil {
			return fmt.Errorf("%s: %w", clipStatement(st), err)
		}
	}
	return nil
}

func isAlterTable(st string) bool {
	tree, err := pg_query.Parse(st)
	return err == nil && len(tree.Stmts) == 1 && tree.Stmts[0].Stmt.GetAlterTableStmt() != nil
}

// notValid rewrites an ALTER TABLE ... ADD CONSTRAINT on its parse tree so
// that the constraint is added NOT VALID.
func notValid(st string) (string, error) {
	tree, err := pg_query.Parse(st)
	if err != nil {
		return "", err
	}
	for _, cmd := range tree.Stmts[0].Stmt.GetAlterTableStmt().GetCmds() {
		if c := cmd.GetAlterTableCmd().GetDef().GetConstraint(); c != nil {
			c.SkipValidation = true
		}
	}
	return pg_query.Deparse(tree)
}

func clipStatement(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}

// catalogSchema builds the tables' definitions from the source's catalog
// when pg_dump cannot be used: the sequences serial columns own, columns
// with their types, NOT NULL, identity, defaults and generated
// expressions, then (post) constraints and indexes. Views, triggers,
// policies and sequence options are left out; a default that calls a
// function the branch lacks makes the branch fail with that error.
func (s *Store) catalogSchema(ctx context.Context, tables []inScope) (pre, post []string, err error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	// Qualify every name the catalog functions render.
	if _, err := tx.Exec(ctx, "SET LOCAL search_path = pg_catalog"); err != nil {
		return nil, nil, err
	}
	var fks []string
	for _, t := range tables {
		if t.kind != "r" && t.kind != "p" {
			continue
		}
		// Sequences owned by serial columns first: the defaults name them.
		rows, err := tx.Query(ctx, `
			SELECT d.objid::regclass::text, pg_catalog.quote_ident(a.attname)
			FROM pg_catalog.pg_depend d
			JOIN pg_catalog.pg_class c ON c.oid = d.objid AND c.relkind = 'S'
			JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
			WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.refclassid = 'pg_catalog.pg_class'::regclass
			AND d.deptype = 'a' AND d.refobjid = pg_catalog.to_regclass($1)`, t.qualified())
		if err != nil {
			return nil, nil, err
		}
		type owned struct{ seq, col string }
		seqs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (owned, error) {
			var o owned
			return o, r.Scan(&o.seq, &o.col)
		})
		if err != nil {
			return nil, nil, fmt.Errorf("read %s's sequences: %w", t.qualified(), err)
		}
		for _, o := range seqs {
			pre = append(pre, "CREATE SEQUENCE "+o.seq)
		}
		rows, err = tx.Query(ctx, `
			SELECT pg_catalog.quote_ident(a.attname) || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod)
				|| CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
				|| CASE a.attidentity WHEN 'a' THEN ' GENERATED ALWAYS AS IDENTITY'
					WHEN 'd' THEN ' GENERATED BY DEFAULT AS IDENTITY' ELSE '' END
				|| CASE WHEN a.attgenerated = 's' THEN ' GENERATED ALWAYS AS (' || pg_catalog.pg_get_expr(d.adbin, d.adrelid) || ') STORED'
					ELSE COALESCE(' DEFAULT ' || pg_catalog.pg_get_expr(d.adbin, d.adrelid), '') END
			FROM pg_catalog.pg_attribute a
			LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
			WHERE a.attrelid = pg_catalog.to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
			ORDER BY a.attnum`, t.qualified())
		if err != nil {
			return nil, nil, err
		}
		cols, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, nil, fmt.Errorf("read %s's columns: %w", t.qualified(), err)
		}
		pre = append(pre, "CREATE TABLE "+t.qualified()+" ("+strings.Join(cols, ", ")+")")
		for _, o := range seqs {
			pre = append(pre, "ALTER SEQUENCE "+o.seq+" OWNED BY "+t.qualified()+"."+o.col)
		}
		rows, err = tx.Query(ctx, `
			SELECT 'ALTER TABLE ' || $1 || ' ADD CONSTRAINT ' || pg_catalog.quote_ident(co.conname) || ' ' || pg_catalog.pg_get_constraintdef(co.oid),
				co.contype = 'f'
			FROM pg_catalog.pg_constraint co
			WHERE co.conrelid = pg_catalog.to_regclass($1) AND co.contype IN ('p', 'u', 'c', 'f')
			UNION ALL
			SELECT pg_catalog.pg_get_indexdef(i.indexrelid), false
			FROM pg_catalog.pg_index i
			WHERE i.indrelid = pg_catalog.to_regclass($1)
			AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint co WHERE co.conindid = i.indexrelid)`, t.qualified())
		if err != nil {
			return nil, nil, err
		}
		type def struct {
			stmt string
			fk   bool
		}
		more, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (def, error) {
			var d def
			return d, r.Scan(&d.stmt, &d.fk)
		})
		if err != nil {
			return nil, nil, fmt.Errorf("read %s's constraints: %w", t.qualified(), err)
		}
		for _, d := range more {
			if d.fk {
				fks = append(fks, d.stmt)
			} else {
				post = append(post, d.stmt)
			}
		}
	}
	// Foreign keys last: they need the referenced tables' keys.
	return pre, append(post, fks...), nil
}

// typeSet is what typeDefinitions returns.
type typeSet struct {
	schemas, stmts []string
}

// typeDefinitions returns CREATE TYPE / CREATE DOMAIN statements for the
// enums and domains the tables' columns use (pg_dump -t dumps tables, not
// the types they depend on), built from the source's catalog.
func (s *Store) typeDefinitions(ctx context.Context, tables []inScope) (typeSet, error) {
	var out typeSet
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = t.schema + "." + t.name
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Qualify every name the catalog functions render.
		if _, err := tx.Exec(ctx, "SET LOCAL search_path = pg_catalog"); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `
			WITH used AS (
				SELECT DISTINCT CASE WHEN et.oid IS NOT NULL THEN et.oid ELSE ty.oid END AS oid
				FROM pg_catalog.pg_attribute a
				JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
				JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
				JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid
				LEFT JOIN pg_catalog.pg_type et ON et.oid = ty.typelem AND ty.typcategory = 'A'
				WHERE n.nspname || '.' || c.relname = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped
			)
			SELECT tn.nspname,
				CASE t.typtype
				WHEN 'e' THEN 'CREATE TYPE ' || t.oid::regtype::text || ' AS ENUM (' ||
					(SELECT pg_catalog.string_agg(pg_catalog.quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)
					 FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid) || ')'
				ELSE 'CREATE DOMAIN ' || t.oid::regtype::text || ' AS ' || pg_catalog.format_type(t.typbasetype, t.typtypmod)
					|| CASE WHEN t.typnotnull THEN ' NOT NULL' ELSE '' END
					|| COALESCE((SELECT pg_catalog.string_agg(' CONSTRAINT ' || pg_catalog.quote_ident(co.conname) || ' ' || pg_catalog.pg_get_constraintdef(co.oid), '')
						FROM pg_catalog.pg_constraint co WHERE co.contypid = t.oid), '')
				END
			FROM used JOIN pg_catalog.pg_type t ON t.oid = used.oid
			JOIN pg_catalog.pg_namespace tn ON tn.oid = t.typnamespace
			WHERE t.typtype IN ('e', 'd') AND tn.nspname NOT IN ('pg_catalog', 'information_schema')
			ORDER BY t.typtype DESC, 2`, names)
		if err != nil {
			return err
		}
		type def struct{ schema, stmt string }
		defs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (def, error) {
			var d def
			return d, r.Scan(&d.schema, &d.stmt)
		})
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, d := range defs {
			if !seen[d.schema] {
				seen[d.schema] = true
				out.schemas = append(out.schemas, d.schema)
			}
			out.stmts = append(out.stmts, d.stmt)
		}
		return nil
	})
	if err != nil {
		return typeSet{}, fmt.Errorf("read the tables' types: %w", err)
	}
	return out, nil
}

// copySample copies up to n rows of each in-scope table into the branch
// with COPY through the client.
func (s *Store) copySample(ctx context.Context, branch *pgx.Conn, tables []inScope, n int) error {
	src, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer src.Release()
	for _, t := range tables {
		if t.kind != "r" && t.kind != "p" {
			continue
		}
		var buf bytes.Buffer
		out := fmt.Sprintf("COPY (SELECT * FROM %s LIMIT %d) TO STDOUT (FORMAT binary)", t.qualified(), n)
		if _, err := src.Conn().PgConn().CopyTo(ctx, &buf, out); err != nil {
			return fmt.Errorf("sample rows of %s: %w", t.qualified(), err)
		}
		if _, err := branch.PgConn().CopyFrom(ctx, &buf, "COPY "+t.qualified()+" FROM STDIN (FORMAT binary)"); err != nil {
			return fmt.Errorf("copy sample rows into %s: %w", t.qualified(), err)
		}
	}
	return nil
}
