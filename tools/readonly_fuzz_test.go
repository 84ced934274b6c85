package tools

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/airlock-dev/airlock/internal/pgtest"
	"github.com/airlock-dev/airlock/roles"
	"github.com/airlock-dev/airlock/scopes"
	"github.com/airlock-dev/airlock/sqlguard"
)

// FuzzReadOnlyExec is the database-backed property of the read guard:
// whatever CheckRead accepts under a real scope (testdata/scopes/readonly.json
// plus public.wide, over the seed database and testdata/wide.sql, with the
// policy loaded through Catalog as the server loads it) is one SELECT (or EXPLAIN of one) over in-scope
// relations, and running it the way query_readonly does (extended protocol,
// BEGIN READ ONLY, the SET LOCAL limits, always rolled back) never fails
// with an error that means it tried to write, lock or leave the
// transaction: not as the superuser, where READ ONLY is the only wall, and
// not as the scope's read role, where a missing privilege means the guard
// let through something the scope does not grant. Afterwards the connection
// must hold no session-level advisory lock. Other errors (division by zero,
// bad casts, timeouts) are fine. The seed corpus is FuzzCheckRead's
// (sharedSeedDir, added here with f.Add, so the read guard has one corpus)
// plus the wide_* inputs over public.wide in testdata/fuzz/FuzzReadOnlyExec,
// where inputs the fuzzer finds failing are written too.
//
// Every process that runs the target (each fuzz worker runs TestMain, so
// each has its own cluster) builds its database, roles and connection once,
// on its first input, so the coordinator, which runs no input, builds
// nothing.
func FuzzReadOnlyExec(f *testing.F) {
	admin := pgtest.AdminURL(f)
	fx := &readFuzz{admin: admin}
	f.Cleanup(fx.close)
	addSharedSeeds(f)
	f.Fuzz(func(t *testing.T, sql string) {
		fx.once.Do(fx.setup)
		if fx.err != nil {
			t.Fatalf("fuzz setup: %v", fx.err)
		}
		fx.check(t, sql)
	})
}

// sharedSeedDir holds FuzzCheckRead's seed corpus, which FuzzReadOnlyExec
// runs as well: the statements that probe the read guard are the same
// whether it is checked alone or against the database.
const sharedSeedDir = "../sqlguard/testdata/fuzz/FuzzCheckRead"

// addSharedSeeds adds every seed of sharedSeedDir to f. A missing or
// unreadable corpus fails the target rather than shrink it unnoticed.
func addSharedSeeds(f *testing.F) {
	f.Helper()
	entries, err := os.ReadDir(sharedSeedDir)
	if err != nil {
		f.Fatalf("shared seed corpus: %v", err)
	}
	n := 0
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(sharedSeedDir, e.Name()))
		if err != nil {
			f.Fatalf("shared seed corpus: %v", err)
		}
		sql, err := parseStringSeed(b)
		if err != nil {
			f.Fatalf("shared seed %s: %v", e.Name(), err)
		}
		f.Add(sql)
		n++
	}
	if n == 0 {
		f.Fatalf("shared seed corpus %s is empty", sharedSeedDir)
	}
}

// parseStringSeed reads a corpus file of one string argument in the format
// the go command writes: the line "go test fuzz v1", then the value as a Go
// call expression, string("...") with a quoted string literal.
func parseStringSeed(b []byte) (string, error) {
	header, value, ok := strings.Cut(strings.TrimRight(string(b), "\n"), "\n")
	if !ok || header != "go test fuzz v1" {
		return "", errors.New(`not a fuzz corpus file: want the header "go test fuzz v1" and one value`)
	}
	lit, prefixed := strings.CutPrefix(strings.TrimSpace(value), "string(")
	lit, suffixed := strings.CutSuffix(lit, ")")
	if !prefixed || !suffixed || strings.Contains(lit, "\n") {
		return "", fmt.Errorf("want one string(...) value, got %q", value)
	}
	return strconv.Unquote(lit)
}

// readFuzzStatementTimeoutMS keeps every input short: the fuzzer finds
// cross joins quickly.
const readFuzzStatementTimeoutMS = 250

// readFuzzHang bounds one CheckRead call: the guard takes well under a
// millisecond on ordinary statements, so seconds mean a denial of service.
const readFuzzHang = 5 * time.Second

// readFuzzMaxRows is the row cap the guard applies, as query_readonly
// passes the scope's max_rows.
const readFuzzMaxRows = 50

// readFuzz is one process's fixture: a seeded database of its own, the
// scope's roles compiled into it, and one connection.
type readFuzz struct {
	admin string

	once   sync.Once
	err    error
	dbName string
	pool   *pgxpool.Pool
	scope  *scopes.Scope
	policy *sqlguard.Policy
}

func (fx *readFuzz) setup() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	fx.err = fx.build(ctx)
}

func (fx *readFuzz) build(ctx context.Context) error {
	scope, err := scopes.Load(pgtest.Testdata("scopes", "readonly.json"))
	if err != nil {
		return err
	}
	// A per-process name gives per-process roles, so that workers sharing
	// one AIRLOCK_TEST_DATABASE_URL server do not race on CREATE ROLE.
	suffix := readFuzzSuffix()
	scope.Name = "fuzz_" + suffix
	scope.Read.StatementTimeoutMS = readFuzzStatementTimeoutMS
	scope.Read.LockTimeoutMS = 100
	scope.Read.MaxRows = readFuzzMaxRows
	// Every column type of wide.sql, so that inputs reach the casts,
	// operators and functions of jsonb, arrays, enums, composites,
	// intervals and the rest.
	scope.Read.Tables["public.wide"] = scopes.TableRule{}
	fx.scope = scope

	// The pgtest_ prefix keeps the database out of other tests'
	// fingerprints.
	fx.dbName = "pgtest_fuzz_" + suffix
	dbURL, err := readFuzzCreateDatabase(ctx, fx.admin, fx.dbName)
	if err != nil {
		return err
	}
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return err
	}
	cfg.MaxConns = 1
	if fx.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return err
	}
	if _, err := roles.Apply(ctx, fx.pool, scope, roles.Options{}); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	fx.policy, err = NewCatalog(fx.pool, scope, logger).Policy(ctx)
	return err
}

func readFuzzSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// readFuzzCreateDatabase creates database name from template0 and loads
// testdata/seed.sql and testdata/wide.sql into it. pgtest.NewDatabase cannot be used: it ties the
// database's life to a testing.TB, and the fuzz function's *testing.T ends
// with each input.
func readFuzzCreateDatabase(ctx context.Context, admin, name string) (string, error) {
	var seeds []string
	for _, name := range []string{"seed.sql", "wide.sql"} {
		b, err := os.ReadFile(pgtest.Testdata(name))
		if err != nil {
			return "", err
		}
		seeds = append(seeds, string(b))
	}
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", err
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE template0")
	conn.Close(context.Background())
	if err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	u, err := url.Parse(admin)
	if err != nil {
		return "", err
	}
	u.Path, u.RawPath = "/"+name, ""
	db, err := pgx.Connect(ctx, u.String())
	if err != nil {
		return "", err
	}
	defer db.Close(context.Background())
	// Exec without arguments uses the simple protocol, which runs the whole
	// script.
	for _, seed := range seeds {
		if _, err := db.Exec(ctx, seed); err != nil {
			return "", fmt.Errorf("load seed: %w", err)
		}
	}
	return u.String(), nil
}

// close drops what setup made. A worker the coordinator kills before this
// runs leaves its throwaway cluster to pgcluster's watchdog; on an
// AIRLOCK_TEST_DATABASE_URL server the database and roles stay behind.
func (fx *readFuzz) close() {
	if fx.pool != nil {
		fx.pool.Close()
	}
	if fx.dbName == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, fx.admin)
	if err != nil {
		fmt.Fprintf(os.Stderr, "fuzz cleanup: %v\n", err)
		return
	}
	defer conn.Close(context.Background())
	stmts := []string{"DROP DATABASE IF EXISTS " + pgx.Identifier{fx.dbName}.Sanitize() + " WITH (FORCE)"}
	for _, r := range []string{fx.scope.ReadRole(), fx.scope.WriteRole()} {
		stmts = append(stmts, "DROP ROLE IF EXISTS "+pgx.Identifier{r}.Sanitize())
	}
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			fmt.Fprintf(os.Stderr, "fuzz cleanup: %s: %v\n", s, err)
		}
	}
}

// check runs one input: the guard as query_readonly runs it, then the
// structural oracle on what it accepted, then the database.
func (fx *readFuzz) check(t *testing.T, sql string) {
	read := fx.scope.Read
	if CheckInput(sql, read.MaxSQLBytes) != nil {
		return
	}
	// A panic on another goroutine ends the worker, so the fuzzer keeps an
	// input that makes the guard hang as a crasher.
	hang := time.AfterFunc(readFuzzHang, func() { panic(fmt.Sprintf("CheckRead(%q) ran longer than %s", sql, readFuzzHang)) })
	plan, err := fx.policy.CheckRead(sql, read.MaxRows)
	hang.Stop()
	if err != nil {
		var r *sqlguard.Refusal
		if !errors.As(err, &r) {
			t.Fatalf("CheckRead(%q) = %v, want a *Refusal", sql, err)
		}
		return
	}
	params := readFuzzShape(t, fx.policy, sql, plan)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := fx.pool.Acquire(ctx)
	if err != nil {
		t.Fatalf("acquire: %v", err)
	}
	pg := conn.Conn().PgConn()
	clean := false
	defer func() {
		if clean {
			conn.Release()
			return
		}
		conn.Hijack().Close(context.Background())
	}()
	for _, role := range []string{"", fx.scope.ReadRole()} {
		err := readFuzzRun(ctx, pg, read, role, plan.SQL, params)
		if code, bad := readFuzzWouldWrite(err); bad {
			as := "the superuser"
			if role != "" {
				as = "role " + role
			}
			t.Fatalf("CheckRead(%q) accepted\n  %s\nwhich failed as %s with SQLSTATE %s: %v", sql, plan.SQL, as, code, err)
		}
		if pg.IsClosed() {
			t.Fatalf("CheckRead(%q) accepted\n  %s\nwhich closed the connection: %v", sql, plan.SQL, err)
		}
	}
	// Session-level advisory locks outlive the rollback and would poison
	// a pooled connection.
	res := pg.ExecParams(ctx, `SELECT count(*) FROM pg_catalog.pg_locks
		WHERE pid = pg_catalog.pg_backend_pid() AND locktype = 'advisory'`, nil, nil, nil, nil).Read()
	if res.Err != nil || len(res.Rows) != 1 {
		t.Fatalf("check locks: %v", res.Err)
	}
	if n := string(res.Rows[0][0]); n != "0" {
		t.Fatalf("CheckRead(%q) accepted\n  %s\nwhich left %s advisory lock(s) on the session", sql, plan.SQL, n)
	}
	clean = pg.TxStatus() == 'I'
}

// readFuzzRun sends the read the way QueryReadonly.execute does: one
// pipeline of ReadSetup, the statement through Parse/Bind/Execute, and
// ROLLBACK. After an error the pipeline is cut short, so it rolls back on
// its own.
func readFuzzRun(ctx context.Context, pg *pgconn.PgConn, read scopes.Read, role, sql string, params [][]byte) error {
	b := &pgconn.Batch{}
	for _, s := range ReadSetup(read, role) {
		b.ExecParams(s, nil, nil, nil, nil)
	}
	b.ExecParams(sql, params, nil, nil, nil)
	b.ExecParams("ROLLBACK", nil, nil, nil, nil)
	_, err := pg.ExecBatch(ctx, b).ReadAll()
	if !pg.IsClosed() && pg.TxStatus() != 'I' {
		if rerr := pg.ExecParams(ctx, "ROLLBACK", nil, nil, nil, nil).Read().Err; rerr != nil && err == nil {
			err = rerr
		}
	}
	return err
}

// readFuzzWouldWrite reports whether err means the statement tried to
// write, lock beyond the read or leave the transaction, or reached
// something the scope's role holds no privilege on.
func readFuzzWouldWrite(err error) (string, bool) {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return "", false
	}
	switch pe.Code[:2] {
	case "25", // invalid transaction state: 25006 read_only_sql_transaction, 25001, ...
		"2D", // invalid transaction termination
		"0B", // invalid transaction initiation
		"3B", // savepoint exception
		"58": // system error: a file the statement tried to open
		return pe.Code, true
	}
	switch pe.Code {
	case "42501", // insufficient_privilege
		"55P03", // lock_not_available: only a lock beyond AccessShare can wait here
		"40P01": // deadlock_detected
		return pe.Code, true
	}
	return pe.Code, false
}

// readFuzzShape is the structural oracle, a generic walk of the SQL that
// will run that shares no code with the guard: one statement, a SELECT or
// an EXPLAIN (without ANALYZE) of one; no write, INTO or locking clause
// anywhere; every relation an in-scope table named with its schema, or a
// CTE the statement defines; every call allowed by the policy's function
// rule. It returns NULL values for the statement's parameters.
func readFuzzShape(t *testing.T, p *sqlguard.Policy, sql string, plan *sqlguard.ReadPlan) [][]byte {
	t.Helper()
	tree, err := pg_query.Parse(plan.SQL)
	if err != nil {
		t.Fatalf("CheckRead(%q) produced SQL that does not parse: %s: %v", sql, plan.SQL, err)
	}
	if len(tree.Stmts) != 1 {
		t.Fatalf("CheckRead(%q) produced %d statements: %s", sql, len(tree.Stmts), plan.SQL)
	}
	switch n := tree.Stmts[0].GetStmt().GetNode().(type) {
	case *pg_query.Node_SelectStmt:
	case *pg_query.Node_ExplainStmt:
		if n.ExplainStmt.GetQuery().GetSelectStmt() == nil {
			t.Fatalf("CheckRead(%q) accepted EXPLAIN of a non-SELECT: %s", sql, plan.SQL)
		}
		for _, o := range n.ExplainStmt.Options {
			if d := o.GetDefElem(); d.GetDefname() == "analyze" && !readFuzzOff(d.GetArg()) {
				t.Fatalf("CheckRead(%q) accepted EXPLAIN ANALYZE: %s", sql, plan.SQL)
			}
		}
	default:
		t.Fatalf("CheckRead(%q) accepted a %T: %s", sql, n, plan.SQL)
	}

	ctes := map[string]bool{}
	var rangeVars []*pg_query.RangeVar
	params := 0
	pgtest.Walk(tree.ProtoReflect(), func(m protoreflect.Message) {
		switch x := m.Interface().(type) {
		case *pg_query.CommonTableExpr:
			ctes[x.Ctename] = true
			if x.GetCtequery().GetSelectStmt() == nil {
				t.Fatalf("CheckRead(%q) accepted a data-modifying WITH query: %s", sql, plan.SQL)
			}
		case *pg_query.RangeVar:
			rangeVars = append(rangeVars, x)
		case *pg_query.ParamRef:
			params = max(params, int(x.Number))
		case *pg_query.FuncCall:
			var schema string
			name := x.Funcname[len(x.Funcname)-1].GetString_().GetSval()
			if len(x.Funcname) == 2 {
				schema = x.Funcname[0].GetString_().GetSval()
			}
			if len(x.Funcname) > 2 {
				t.Fatalf("CheckRead(%q) accepted a call with a %d-part name: %s", sql, len(x.Funcname), plan.SQL)
			}
			if r := p.Functions.CheckFunction(schema, name); r != nil {
				t.Fatalf("CheckRead(%q) accepted a refused call: %v: %s", sql, r, plan.SQL)
			}
		case *pg_query.InsertStmt, *pg_query.UpdateStmt, *pg_query.DeleteStmt, *pg_query.MergeStmt,
			*pg_query.IntoClause, *pg_query.LockingClause:
			t.Fatalf("CheckRead(%q) accepted a %T: %s", sql, x, plan.SQL)
		}
	})

	inPlan := map[string]bool{}
	for _, name := range plan.Tables {
		inPlan[name] = true
	}
	for _, rv := range rangeVars {
		if rv.Schemaname == "" && ctes[rv.Relname] {
			continue
		}
		name := rv.Schemaname + "." + rv.Relname
		for _, t := range p.Tables {
			// A masked table is read through its view.
			if t.ReadName != "" && rv.Schemaname == t.ReadSchema && rv.Relname == t.ReadName {
				name = t.QualifiedName()
			}
		}
		if rv.Catalogname != "" || p.Tables[name] == nil || !inPlan[name] {
			t.Fatalf("CheckRead(%q) reads %s (schema %q), which is not an in-scope table in the plan %v: %s",
				sql, rv.Relname, rv.Schemaname, plan.Tables, plan.SQL)
		}
	}
	if params > maxParams {
		// The tool refuses more params than this, so the statement cannot run.
		params = maxParams
	}
	return make([][]byte, params)
}

// readFuzzOff reports whether an option argument switches the option off,
// as PostgreSQL's defGetBoolean reads it; no argument means on.
func readFuzzOff(arg *pg_query.Node) bool {
	switch x := arg.GetNode().(type) {
	case *pg_query.Node_Boolean:
		return !x.Boolean.Boolval
	case *pg_query.Node_Integer:
		return x.Integer.Ival == 0
	case *pg_query.Node_String_:
		v := strings.ToLower(x.String_.Sval)
		return v == "false" || v == "off"
	}
	return false
}
