package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/airlock-dev/airlock/internal/pgcluster"
)

// EnvDatabaseURL names the environment variable that points the tests at an
// existing server instead of a throwaway cluster. Its value must be a
// postgres:// URL of a superuser, or of a role with CREATEDB and CREATEROLE,
// connected to a maintenance database (e.g. postgres). The server needs
// max_prepared_transactions > 0 for the prepared write mode's tests. Test
// packages then share one server: roles and server settings are shared too,
// so run them one at a time (go test -p 1) if their fingerprints must not see
// each other's roles.
const EnvDatabaseURL = "AIRLOCK_TEST_DATABASE_URL"

// namePrefix starts the name of every database pgtest creates, so that
// fingerprints can ignore other tests' databases.
const namePrefix = "pgtest_"

var (
	adminURL string
	cluster  *pgcluster.Cluster
	// runID makes this process's database names unique, so that test
	// packages running in parallel against one external server do not collide.
	runID = newRunID()
)

func newRunID() string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("pgtest: random run id: %v", err))
	}
	return hex.EncodeToString(b)
}

// Main runs the package's tests against PostgreSQL; call it from TestMain
// and pass its result to os.Exit. With AIRLOCK_TEST_DATABASE_URL set it uses
// that server; otherwise it starts a throwaway cluster
// (max_prepared_transactions 20) and stops it after the tests. If there is
// no PostgreSQL to run, it prints how to install one and returns 1.
func Main(m *testing.M) int {
	if u := os.Getenv(EnvDatabaseURL); u != "" {
		if err := checkURL(u); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: %s: %v\n", EnvDatabaseURL, err)
			return 1
		}
		adminURL = u
		code := m.Run()
		if err := dropTemplate(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		}
		return code
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	c, err := pgcluster.Start(ctx, pgcluster.Options{MaxPreparedTransactions: 20})
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\npgtest: alternatively, set %s to the URL of a PostgreSQL superuser.\n",
			err, EnvDatabaseURL)
		return 1
	}
	cluster, adminURL = c, c.URL("postgres")
	code := m.Run()
	if err := c.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

func checkURL(u string) error {
	parsed, err := url.Parse(u)
	if err != nil {
		return fmt.Errorf("not a URL: %w", err)
	}
	if parsed.Scheme != "postgres" && parsed.Scheme != "postgresql" {
		return fmt.Errorf("want a postgres:// URL, got scheme %q", parsed.Scheme)
	}
	return nil
}

// AdminURL returns the URL of a superuser (or the AIRLOCK_TEST_DATABASE_URL
// role) connected to the maintenance database. Use it for cluster-wide
// setup such as roles; use NewDatabase for anything that writes data.
func AdminURL(t testing.TB) string {
	t.Helper()
	if adminURL == "" {
		t.Fatal("pgtest: no PostgreSQL server: call pgtest.Main from the package's TestMain")
	}
	return adminURL
}

// Cluster returns the package's throwaway cluster, or nil when the tests use
// AIRLOCK_TEST_DATABASE_URL. Fault tests use it to restart the server.
func Cluster() *pgcluster.Cluster { return cluster }

// databaseURL returns AdminURL pointed at database name.
func databaseURL(name string) string {
	u, err := url.Parse(adminURL)
	if err != nil {
		panic(fmt.Sprintf("pgtest: admin URL: %v", err)) // checked by Main
	}
	u.Path, u.RawPath = "/"+name, ""
	return u.String()
}

// Testdata returns the absolute path of parts inside the repository's
// testdata directory, wherever the test runs from.
func Testdata(parts ...string) string {
	return filepath.Join(append([]string{repoRoot(), "testdata"}, parts...)...)
}

// repoRoot finds the module root from this source file's location, falling
// back to a search up from the working directory (for -trimpath builds).
func repoRoot() string {
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		root := filepath.Join(filepath.Dir(file), "..", "..")
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
			return root
		}
	}
	dir, err := os.Getwd()
	if err != nil {
		panic(fmt.Sprintf("pgtest: find repository root: %v", err))
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			panic("pgtest: find repository root: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Connect opens a connection to url that is closed when the test ends.
func Connect(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// quoteIdent quotes a database name for SQL.
func quoteIdent(name string) string {
	return pgx.Identifier{name}.Sanitize()
}
