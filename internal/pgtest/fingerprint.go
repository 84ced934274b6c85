package pgtest

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// Snapshot is a fingerprint of everything an attack could change in a
// database and its server, taken by Fingerprint. Compare two with Diff.
type Snapshot struct {
	// Items maps each fingerprinted thing to a description of its state.
	// Keys are "<kind> <name>", for example "rows public.orders",
	// "column public.customers.email", "role alice",
	// "file_setting postgresql.auto.conf:work_mem".
	Items map[string]string
}

// Fingerprint takes a Snapshot of the database at url on a fresh connection.
//
// Database-wide it covers every table, sequence and other object outside
// pg_catalog, information_schema, pg_toast and airlock (airlock's audit
// schema changes legitimately), including other sessions' temporary tables:
// each table's row count and an md5 of its ordered rows; columns with types,
// defaults and nullability; constraints; indexes; view definitions; function
// definitions; triggers; policies; types; grants and comments; extensions,
// event triggers and default privileges; sequences' last_value and
// is_called; large objects with a hash of their content; prepared
// transactions and advisory locks held in this database.
//
// Server-wide it covers roles (attributes, password hashes) and role
// memberships, the configuration files' contents (pg_file_settings, so ALTER
// SYSTEM shows), per-database and per-role settings, and the list of
// databases, minus the other databases pgtest created. Because these are
// shared by the whole package, a test comparing fingerprints must not run in
// parallel with tests that create roles or change server settings.
//
// A relation someone holds an ACCESS EXCLUSIVE lock on (for example a
// prepared transaction that altered it) is not waited for: its content reads
// "not read: ..." and its expression-bearing definitions (defaults,
// constraints, indexes, view text, triggers, policies) read "(locked)", so
// the lock itself shows in a Diff. The fingerprint takes about 100 ms on the
// seed database.
func Fingerprint(t testing.TB, url string) Snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := fingerprint(ctx, url)
	if err != nil {
		t.Fatalf("pgtest: fingerprint: %v", err)
	}
	return s
}

// userSchema is a predicate on a schema name column that keeps the schemas
// a fingerprint covers.
func userSchema(col string) string {
	return strings.ReplaceAll(`{col} NOT IN ('pg_catalog', 'information_schema', 'pg_toast', 'airlock')
	AND {col} NOT LIKE 'pg\_toast\_temp\_%'`, "{col}", col)
}

// thisDatabaseOrNotPgtest is a predicate on a database name column that drops
// the databases other tests created.
func thisDatabaseOrNotPgtest(col string) string {
	return strings.ReplaceAll(`({col} NOT LIKE 'pgtest\_%' OR {col} = current_database())`, "{col}", col)
}

// catalogQueries each return (key, value) rows for Snapshot.Items.
var catalogQueries = []string{
	// schemas (pg_temp_N schemas stay after their session; their tables count)
	`SELECT 'schema ' || n.nspname,
		format('owner=%s acl=%s comment=%s', pg_get_userbyid(n.nspowner), n.nspacl,
			obj_description(n.oid, 'pg_namespace'))
	FROM pg_namespace n
	WHERE ` + userSchema("n.nspname") + ` AND n.nspname NOT LIKE 'pg\_temp\_%'`,

	`SELECT 'function ' || n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
		format('owner=%s acl=%s comment=%s definition=%s', pg_get_userbyid(p.proowner), p.proacl,
			obj_description(p.oid, 'pg_proc'),
			CASE WHEN p.prokind = 'a' THEN 'aggregate' ELSE pg_get_functiondef(p.oid) END)
	FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
	WHERE ` + userSchema("n.nspname"),

	// enums, domains, ranges, base types and free-standing composite types;
	// not the row types and array types PostgreSQL makes by itself
	`SELECT 'type ' || n.nspname || '.' || t.typname,
		format('kind=%s owner=%s acl=%s base=%s not_null=%s default=%s labels=%s comment=%s',
			t.typtype, pg_get_userbyid(t.typowner), t.typacl,
			CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END,
			t.typnotnull, t.typdefault,
			(SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid),
			obj_description(t.oid, 'pg_type'))
	FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
	WHERE ` + userSchema("n.nspname") + `
		AND (t.typrelid = 0 OR (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c')
		AND NOT EXISTS (SELECT 1 FROM pg_type a WHERE a.typarray = t.oid)`,

	`SELECT 'sequence ' || n.nspname || '.' || c.relname,
		format('type=%s start=%s increment=%s min=%s max=%s cache=%s cycle=%s', s.seqtypid::regtype,
			s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle)
	FROM pg_sequence s
	JOIN pg_class c ON c.oid = s.seqrelid
	JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE ` + userSchema("n.nspname"),

	`SELECT 'extension ' || e.extname, format('version=%s schema=%s', e.extversion, e.extnamespace::regnamespace)
	FROM pg_extension e`,

	`SELECT 'event_trigger ' || e.evtname,
		format('event=%s function=%s enabled=%s tags=%s', e.evtevent, e.evtfoid::regproc, e.evtenabled, e.evttags)
	FROM pg_event_trigger e`,

	`SELECT 'default_acl ' || pg_get_userbyid(d.defaclrole) || ' ' || coalesce(d.defaclnamespace::regnamespace::text, '*')
			|| ' ' || d.defaclobjtype::text,
		d.defaclacl::text
	FROM pg_default_acl d`,

	`SELECT 'large_object_meta ' || m.oid, format('owner=%s acl=%s', pg_get_userbyid(m.lomowner), m.lomacl)
	FROM pg_largeobject_metadata m`,

	`SELECT 'prepared_xact ' || p.gid, format('owner=%s', p.owner)
	FROM pg_prepared_xacts p
	WHERE p.database = current_database()`,

	`SELECT format('advisory_lock %s:%s:%s %s granted=%s', l.classid, l.objid, l.objsubid, l.mode, l.granted),
		format('holders=%s', count(*))
	FROM pg_locks l
	WHERE l.locktype = 'advisory'
		AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
	GROUP BY 1`,

	// server-wide

	`SELECT 'role ' || r.rolname,
		format('superuser=%s inherit=%s createrole=%s createdb=%s login=%s replication=%s bypassrls=%s connection_limit=%s valid_until=%s config=%s',
			r.rolsuper, r.rolinherit, r.rolcreaterole, r.rolcreatedb, r.rolcanlogin, r.rolreplication,
			r.rolbypassrls, r.rolconnlimit, r.rolvaliduntil, r.rolconfig)
	FROM pg_roles r`,

	// to_jsonb keeps the options PostgreSQL 16 added (inherit, set) without
	// naming them.
	`SELECT 'membership ' || pg_get_userbyid(m.member) || ' in ' || pg_get_userbyid(m.roleid)
			|| ' granted by ' || pg_get_userbyid(m.grantor),
		(to_jsonb(m) - 'oid' - 'roleid' - 'member' - 'grantor')::text
	FROM pg_auth_members m`,

	`SELECT 'db_role_setting ' || coalesce(d.datname, '*') || '/'
			|| CASE WHEN s.setrole = 0 THEN '*' ELSE pg_get_userbyid(s.setrole) END,
		s.setconfig::text
	FROM pg_db_role_setting s LEFT JOIN pg_database d ON d.oid = s.setdatabase
	WHERE d.datname IS NULL OR ` + thisDatabaseOrNotPgtest("d.datname"),

	`SELECT 'database ' || d.datname,
		format('owner=%s acl=%s allow_connections=%s connection_limit=%s is_template=%s encoding=%s collate=%s ctype=%s',
			pg_get_userbyid(d.datdba), d.datacl, d.datallowconn, d.datconnlimit, d.datistemplate,
			pg_encoding_to_char(d.encoding), d.datcollate, d.datctype)
	FROM pg_database d
	WHERE ` + thisDatabaseOrNotPgtest("d.datname"),
}

// lockedRelations is the parameter of relationQueries: the OIDs of the
// relations some transaction holds an ACCESS EXCLUSIVE lock on. pg_get_expr,
// pg_get_viewdef and their kin open the relation and would wait for such a
// lock (a prepared transaction's may last for hours), so for these the
// definition reads "(locked)".
const lockedRelations = `($1::text)::oid[]`

// relationQueries are catalog queries that deparse relation-bound
// expressions; they take lockedRelations as $1.
var relationQueries = []string{
	// tables, views, sequences, composite types, foreign tables
	`SELECT 'relation ' || n.nspname || '.' || c.relname,
		format('kind=%s persistence=%s owner=%s acl=%s rls=%s force_rls=%s options=%s partition_bound=%s comment=%s',
			c.relkind, c.relpersistence, pg_get_userbyid(c.relowner), c.relacl, c.relrowsecurity,
			c.relforcerowsecurity, c.reloptions,
			CASE WHEN c.relpartbound IS NULL THEN NULL
				WHEN c.oid = ANY (` + lockedRelations + `) THEN '(locked)'
				ELSE pg_get_expr(c.relpartbound, c.oid) END,
			obj_description(c.oid, 'pg_class'))
	FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'c', 'S') AND ` + userSchema("n.nspname"),

	`SELECT 'column ' || n.nspname || '.' || c.relname || '.' || a.attname,
		format('%s position=%s not_null=%s default=%s identity=%s generated=%s collation=%s acl=%s comment=%s',
			format_type(a.atttypid, a.atttypmod), a.attnum, a.attnotnull,
			CASE WHEN d.adbin IS NULL THEN NULL
				WHEN c.oid = ANY (` + lockedRelations + `) THEN '(locked)'
				ELSE pg_get_expr(d.adbin, d.adrelid) END,
			a.attidentity, a.attgenerated,
			CASE WHEN a.attcollation <> 0 THEN a.attcollation::regcollation::text END,
			a.attacl, col_description(c.oid, a.attnum))
	FROM pg_attribute a
	JOIN pg_class c ON c.oid = a.attrelid
	JOIN pg_namespace n ON n.oid = c.relnamespace
	LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
	WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'c')
		AND ` + userSchema("n.nspname"),

	`SELECT 'constraint ' || n.nspname || '.' || coalesce(c.relname, t.typname, '-') || '.' || con.conname,
		format('%s comment=%s',
			CASE WHEN con.conrelid = ANY (` + lockedRelations + `) THEN '(locked)' ELSE pg_get_constraintdef(con.oid) END,
			obj_description(con.oid, 'pg_constraint'))
	FROM pg_constraint con
	JOIN pg_namespace n ON n.oid = con.connamespace
	LEFT JOIN pg_class c ON c.oid = con.conrelid
	LEFT JOIN pg_type t ON t.oid = con.contypid
	WHERE ` + userSchema("n.nspname"),

	`SELECT 'index ' || n.nspname || '.' || ic.relname,
		format('%s valid=%s comment=%s',
			CASE WHEN i.indrelid = ANY (` + lockedRelations + `) OR i.indexrelid = ANY (` + lockedRelations + `)
				THEN '(locked)' ELSE pg_get_indexdef(i.indexrelid) END,
			i.indisvalid, obj_description(i.indexrelid, 'pg_class'))
	FROM pg_index i
	JOIN pg_class ic ON ic.oid = i.indexrelid
	JOIN pg_namespace n ON n.oid = ic.relnamespace
	WHERE ` + userSchema("n.nspname"),

	`SELECT 'view ' || n.nspname || '.' || c.relname,
		CASE WHEN c.oid = ANY (` + lockedRelations + `) THEN '(locked)' ELSE pg_get_viewdef(c.oid) END
	FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE c.relkind IN ('v', 'm') AND ` + userSchema("n.nspname"),

	`SELECT 'trigger ' || n.nspname || '.' || c.relname || '.' || tg.tgname,
		format('%s enabled=%s',
			CASE WHEN tg.tgrelid = ANY (` + lockedRelations + `) THEN '(locked)' ELSE pg_get_triggerdef(tg.oid) END,
			tg.tgenabled)
	FROM pg_trigger tg
	JOIN pg_class c ON c.oid = tg.tgrelid
	JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE NOT tg.tgisinternal AND ` + userSchema("n.nspname"),

	`SELECT 'policy ' || n.nspname || '.' || c.relname || '.' || pol.polname,
		format('permissive=%s command=%s roles=%s using=%s check=%s', pol.polpermissive, pol.polcmd,
			(SELECT string_agg(CASE WHEN r = 0 THEN 'public' ELSE pg_get_userbyid(r) END, ',' ORDER BY r)
				FROM unnest(pol.polroles) AS r),
			CASE WHEN pol.polqual IS NULL THEN NULL
				WHEN c.oid = ANY (` + lockedRelations + `) THEN '(locked)'
				ELSE pg_get_expr(pol.polqual, pol.polrelid) END,
			CASE WHEN pol.polwithcheck IS NULL THEN NULL
				WHEN c.oid = ANY (` + lockedRelations + `) THEN '(locked)'
				ELSE pg_get_expr(pol.polwithcheck, pol.polrelid) END)
	FROM pg_policy pol
	JOIN pg_class c ON c.oid = pol.polrelid
	JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE ` + userSchema("n.nspname"),
}

// privilegedQueries need a superuser (or the named privilege); a role
// without it gets a fingerprint without them.
var privilegedQueries = []struct {
	check, sql string
}{
	{
		`has_table_privilege('pg_catalog.pg_authid', 'SELECT')`,
		`SELECT 'role_password ' || a.rolname, md5(coalesce(a.rolpassword, '')) FROM pg_authid a`,
	},
	{
		`has_table_privilege('pg_catalog.pg_largeobject', 'SELECT')`,
		`SELECT 'large_object ' || l.loid, format('pages=%s md5=%s', count(*), md5(string_agg(l.data, ''::bytea ORDER BY l.pageno)))
		FROM pg_largeobject l GROUP BY l.loid`,
	},
	{
		`has_function_privilege('pg_catalog.pg_show_all_file_settings()', 'EXECUTE')`,
		`SELECT 'file_setting ' || coalesce(regexp_replace(f.sourcefile, '^.*/', ''), '-') || ':' || coalesce(f.name, '-'),
			string_agg(format('%s applied=%s error=%s', f.setting, f.applied, f.error), '; ' ORDER BY f.seqno)
		FROM pg_file_settings f
		GROUP BY 1`,
	},
}

// lockedRelationsQuery returns the lockedRelations parameter.
const lockedRelationsQuery = `SELECT coalesce(array_agg(DISTINCT l.relation), '{}')::text
FROM pg_locks l
WHERE l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock' AND l.granted
	AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`

// contentRelationsQuery lists the relations whose content is hashed, and
// whether one is locked against reads. Other sessions' temporary tables
// cannot be read at all; they show up in the catalog queries.
var contentRelationsQuery = `SELECT n.nspname, c.relname, c.relkind::text,
	EXISTS (SELECT 1 FROM pg_locks l
		WHERE l.locktype = 'relation' AND l.relation = c.oid AND l.mode = 'AccessExclusiveLock' AND l.granted
			AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()))
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm', 'S') AND c.relpersistence <> 't' AND (c.relkind <> 'm' OR c.relispopulated)
	AND ` + userSchema("n.nspname") + `
ORDER BY 1, 2`

type contentRelation struct {
	schema, name, kind string
	locked             bool
}

func fingerprint(ctx context.Context, url string) (Snapshot, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return Snapshot{}, err
	}
	// One round trip per batch, no prepared statements to clean up.
	cfg.DefaultQueryExecMode = pgx.QueryExecModeExec
	cfg.RuntimeParams["application_name"] = "pgtest-fingerprint"
	// A lock taken after planFingerprint looked must fail the fingerprint,
	// not hang it.
	cfg.RuntimeParams["lock_timeout"] = "5s"
	cfg.RuntimeParams["statement_timeout"] = "60s"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return Snapshot{}, err
	}
	defer conn.Close(context.Background())

	plan, err := planFingerprint(ctx, conn)
	if err != nil {
		return Snapshot{}, err
	}
	s := Snapshot{Items: map[string]string{}}
	batch := &pgx.Batch{}
	for _, q := range catalogQueries {
		queueItems(batch, s, q)
	}
	for _, q := range relationQueries {
		queueItems(batch, s, q, plan.locked)
	}
	for i, q := range privilegedQueries {
		if plan.allowed[i] {
			queueItems(batch, s, q.sql)
		}
	}
	for _, r := range plan.content {
		queueContent(batch, s, r)
	}
	if err := conn.SendBatch(ctx, batch).Close(); err != nil {
		return Snapshot{}, err
	}
	return s, nil
}

// fingerprintPlan is what a fingerprint needs to know before it can read
// everything in one batch.
type fingerprintPlan struct {
	content []contentRelation // relations whose content is hashed
	allowed []bool            // which privilegedQueries the role may run
	locked  string            // the lockedRelations parameter
}

func planFingerprint(ctx context.Context, conn *pgx.Conn) (fingerprintPlan, error) {
	var plan fingerprintPlan
	batch := &pgx.Batch{}
	batch.Queue(contentRelationsQuery).Query(func(rows pgx.Rows) error {
		var err error
		plan.content, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (contentRelation, error) {
			var r contentRelation
			err := row.Scan(&r.schema, &r.name, &r.kind, &r.locked)
			return r, err
		})
		return err
	})
	checks := make([]string, len(privilegedQueries))
	for i, q := range privilegedQueries {
		checks[i] = q.check
	}
	batch.Queue("SELECT ARRAY[" + strings.Join(checks, ", ") + "]").QueryRow(func(row pgx.Row) error {
		return row.Scan(&plan.allowed)
	})
	batch.Queue(lockedRelationsQuery).QueryRow(func(row pgx.Row) error {
		return row.Scan(&plan.locked)
	})
	if err := conn.SendBatch(ctx, batch).Close(); err != nil {
		return fingerprintPlan{}, err
	}
	return plan, nil
}

func queueItems(batch *pgx.Batch, s Snapshot, sql string, args ...any) {
	batch.Queue(sql, args...).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var key string
			var value *string
			if err := rows.Scan(&key, &value); err != nil {
				return fmt.Errorf("%s: %w", queryLabel(sql), err)
			}
			v := ""
			if value != nil {
				v = *value
			}
			s.Items[key] = v
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("%s: %w", queryLabel(sql), err)
		}
		return nil
	})
}

// queryLabel names a catalog query in an error by its start.
func queryLabel(sql string) string {
	label := compact(sql)
	if len(label) > 60 {
		label = label[:60] + "…"
	}
	return label
}

func queueContent(batch *pgx.Batch, s Snapshot, r contentRelation) {
	ident := pgx.Identifier{r.schema, r.name}.Sanitize()
	key := "rows " + r.schema + "." + r.name
	sql := `SELECT format('count=%s md5=%s', count(*),
		md5(string_agg(ROW(fp_row.*)::text, E'\n' ORDER BY ROW(fp_row.*)::text COLLATE "C")))
	FROM ONLY ` + ident + ` AS fp_row`
	if r.kind == "S" {
		key = "sequence_value " + r.schema + "." + r.name
		sql = `SELECT format('last_value=%s is_called=%s', last_value, is_called) FROM ` + ident
	}
	if r.locked {
		s.Items[key] = "not read: an ACCESS EXCLUSIVE lock is held on it"
		return
	}
	batch.Queue(sql).QueryRow(func(row pgx.Row) error {
		var v string
		if err := row.Scan(&v); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		s.Items[key] = v
		return nil
	})
}

// serverWideKinds are the Snapshot item kinds shared by every database of
// the server.
var serverWideKinds = []string{"role ", "role_password ", "membership ", "db_role_setting ", "database ", "file_setting "}

// DatabaseOnly returns s without its server-wide items (roles, memberships,
// databases, settings): what a test may compare while other tests run in
// parallel on the same server.
func (s Snapshot) DatabaseOnly() Snapshot {
	out := Snapshot{Items: make(map[string]string, len(s.Items))}
next:
	for k, v := range s.Items {
		for _, p := range serverWideKinds {
			if strings.HasPrefix(k, p) {
				continue next
			}
		}
		out.Items[k] = v
	}
	return out
}

// Diff returns "" when a and b are the same, and otherwise one line per
// difference, sorted: "+ key: value" for what only b has, "- key: value"
// for what only a has, "~ key: a-value → b-value" for what changed. Long
// values are shortened around the first difference.
func (a Snapshot) Diff(b Snapshot) string {
	keys := map[string]bool{}
	for k := range a.Items {
		keys[k] = true
	}
	for k := range b.Items {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	var lines []string
	for _, k := range sorted {
		av, inA := a.Items[k]
		bv, inB := b.Items[k]
		switch {
		case !inA:
			lines = append(lines, "+ "+k+": "+shorten(compact(bv), 0))
		case !inB:
			lines = append(lines, "- "+k+": "+shorten(compact(av), 0))
		case av != bv:
			ca, cb := compact(av), compact(bv)
			from := commonPrefix(ca, cb)
			lines = append(lines, "~ "+k+": "+shorten(ca, from)+" → "+shorten(cb, from))
		}
	}
	return strings.Join(lines, "\n")
}

// compact puts a value on one line.
func compact(v string) string {
	return strings.Join(strings.Fields(v), " ")
}

func commonPrefix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// shorten cuts v to about 200 bytes, starting a little before byte from.
func shorten(v string, from int) string {
	const lead, limit = 40, 200
	start := max(from-lead, 0)
	for start > 0 && !utf8.RuneStart(v[start]) {
		start--
	}
	out := v[start:]
	if len(out) > limit {
		end := limit
		for end > 0 && !utf8.RuneStart(out[end]) {
			end--
		}
		out = out[:end] + "…"
	}
	if start > 0 {
		out = "…" + out
	}
	return out
}

// Except returns s without the items whose key drop matches: what a test
// leaves out on purpose, such as a column's position after it came back.
func (s Snapshot) Except(drop func(key string) bool) Snapshot {
	out := Snapshot{Items: make(map[string]string, len(s.Items))}
	for k, v := range s.Items {
		if !drop(k) {
			out.Items[k] = v
		}
	}
	return out
}
