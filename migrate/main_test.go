package migrate

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/pgtest"
	"github.com/airlock-dev/airlock/sqlguard"
	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// fixtureDB returns the URL of a fresh database holding
// testdata/fixture.sql.
func fixtureDB(t testing.TB) string {
	t.Helper()
	url := pgtest.NewEmptyDatabase(t)
	fixture, err := os.ReadFile(filepath.Join("testdata", "fixture.sql"))
	if err != nil {
		t.Fatal(err)
	}
	conn := pgtest.Connect(t, url)
	// Our own multi-statement script: the simple protocol is what runs it.
	if _, err := conn.Exec(context.Background(), string(fixture)); err != nil {
		t.Fatalf("load fixture: %v", err)
	}
	return url
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// stmt builds a plan statement by hand, the way sqlguard would accept it.
type stmt struct {
	sql      string
	kind     string
	targets  []string
	reads    []string
	notValid bool
	noWhere  bool
	findings []sqlguard.Finding
}

func planOf(stmts ...stmt) *sqlguard.MigrationPlan {
	p := &sqlguard.MigrationPlan{Fingerprint: "test"}
	for _, s := range stmts {
		p.Statements = append(p.Statements, sqlguard.MigrationStatement{
			SQL:      s.sql,
			Kind:     s.kind,
			Kinds:    []string{s.kind},
			Targets:  s.targets,
			Reads:    s.reads,
			HasWhere: !s.noWhere,
			NotValid: s.notValid,
			Findings: s.findings,
		})
	}
	return p
}

func queryInt(t testing.TB, conn *pgx.Conn, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := conn.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func lockMode(locks []Lock, relation string) string {
	for _, l := range locks {
		if l.Relation == relation {
			return l.Mode
		}
	}
	return ""
}

func hasCode(fs []sqlguard.Finding, code string) *sqlguard.Finding {
	for i := range fs {
		if fs[i].Code == code {
			return &fs[i]
		}
	}
	return nil
}
