package migrate

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/airlock-dev/airlock/sqlguard"
	"github.com/jackc/pgx/v5"
)

// Lock is a relation-level lock the migration's backend holds.
type Lock struct {
	// Relation is schema.name.
	Relation string `json:"relation"`
	// Mode is pg_locks.mode, e.g. "AccessExclusiveLock".
	Mode string `json:"mode"`
}

// lockRank orders the table lock modes by strength: each conflicts with at
// least every mode the one before it conflicts with.
var lockRank = map[string]int{
	"AccessShareLock":          1,
	"RowShareLock":             2,
	"RowExclusiveLock":         3,
	"ShareUpdateExclusiveLock": 4,
	"ShareLock":                5,
	"ShareRowExclusiveLock":    6,
	"ExclusiveLock":            7,
	"AccessExclusiveLock":      8,
}

const accessExclusive = "AccessExclusiveLock"

// observer follows the locks and relfilenodes of the transaction from one
// statement to the next. It keys relations by oid: a relation renamed by
// the migration is still the same relation.
type observer struct {
	// names holds the user relations' names, as last seen: a lock on a
	// relation the migration dropped is still named.
	names map[uint32]string
	// filenodes is the current relfilenode of each pre-existing relation
	// with storage.
	filenodes map[uint32]uint32
	// strongest is the strongest mode held on each relation so far.
	strongest map[uint32]string
}

func newObserver(before *catalog) *observer {
	o := &observer{
		names:     make(map[uint32]string, len(before.rels)),
		filenodes: make(map[uint32]uint32, len(before.rels)),
		strongest: map[uint32]string{},
	}
	for oid, r := range before.rels {
		o.names[oid] = r.qualified()
		if r.hasStorage() {
			o.filenodes[oid] = r.Filenode
		}
	}
	return o
}

// observeSQL lists, in one round trip, the relation locks this backend
// holds and the pre-existing relations whose relfilenode changed (with the
// new file's size: TRUNCATE also swaps the file, but for an empty one).
const observeSQL = `
SELECT json_build_object(
  'locks', (
    SELECT coalesce(json_agg(json_build_object(
      'oid', l.relation::int8, 'mode', l.mode, 'schema', n.nspname, 'name', c.relname, 'kind', c.relkind::text)), '[]')
    FROM pg_locks l
    LEFT JOIN pg_class c ON c.oid = l.relation
    LEFT JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted),
  'files', (
    SELECT coalesce(json_agg(json_build_object(
      'oid', c.oid::int8, 'filenode', c.relfilenode::int8, 'bytes', pg_relation_size(c.oid))), '[]')
    FROM unnest($1::oid[], $2::oid[]) AS b(oid, filenode)
    JOIN pg_class c ON c.oid = b.oid
    WHERE c.relfilenode <> b.filenode)
)`

type observedLock struct {
	OID    uint32  `json:"oid"`
	Mode   string  `json:"mode"`
	Schema *string `json:"schema"`
	Name   *string `json:"name"`
	Kind   *string `json:"kind"`
}

type observedFile struct {
	OID      uint32 `json:"oid"`
	Filenode uint32 `json:"filenode"`
	Bytes    int64  `json:"bytes"`
}

// observe returns the locks that are new or stronger since the last call,
// and the pre-existing tables rewritten since then.
func (o *observer) observe(ctx context.Context, tx pgx.Tx) (locks []Lock, rewritten []string, err error) {
	oids := make([]uint32, 0, len(o.filenodes))
	nodes := make([]uint32, 0, len(o.filenodes))
	for oid, n := range o.filenodes {
		oids = append(oids, oid)
		nodes = append(nodes, n)
	}
	var raw []byte
	if err := tx.QueryRow(ctx, observeSQL, oids, nodes).Scan(&raw); err != nil {
		return nil, nil, err
	}
	var doc struct {
		Locks []observedLock `json:"locks"`
		Files []observedFile `json:"files"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, nil, fmt.Errorf("decode: %w", err)
	}

	locks = []Lock{} // JSON [] rather than null
	now := map[uint32]string{}
	for _, l := range doc.Locks {
		if o.track(l) && lockRank[l.Mode] > lockRank[now[l.OID]] {
			now[l.OID] = l.Mode
		}
	}
	for oid, mode := range now {
		if lockRank[mode] > lockRank[o.strongest[oid]] {
			locks = append(locks, Lock{Relation: o.names[oid], Mode: mode})
			o.strongest[oid] = mode
		}
	}
	sortLocks(locks)

	for _, f := range doc.Files {
		o.filenodes[f.OID] = f.Filenode
		// A new empty file is a TRUNCATE (or the rewrite of an empty
		// table): nothing was copied.
		if f.Bytes > 0 {
			rewritten = append(rewritten, o.names[f.OID])
		}
	}
	sort.Strings(rewritten)
	return locks, rewritten, nil
}

// track reports whether a lock is worth reporting, on a user table, view
// or foreign table (indexes and sequences follow their table), and records
// the relation's current name.
func (o *observer) track(l observedLock) bool {
	if l.Name == nil {
		// Gone from the catalog: dropped by the migration, reported under
		// its last name if it was a user relation.
		_, ok := o.names[l.OID]
		return ok
	}
	if isSystemSchema(*l.Schema) {
		return false
	}
	switch *l.Kind {
	case "r", "p", "v", "m", "f":
		o.names[l.OID] = *l.Schema + "." + *l.Name
		return true
	}
	return false
}

func isSystemSchema(s string) bool {
	return s == "information_schema" || s == airlockSchema || strings.HasPrefix(s, "pg_")
}

// held is the strongest lock on each relation so far: what a prepared
// transaction keeps holding.
func (o *observer) held() []Lock {
	locks := make([]Lock, 0, len(o.strongest))
	for oid, mode := range o.strongest {
		locks = append(locks, Lock{Relation: o.names[oid], Mode: mode})
	}
	sortLocks(locks)
	return locks
}

// lockedOIDs lists every user relation the transaction holds a lock on.
func (o *observer) lockedOIDs() []uint32 {
	oids := make([]uint32, 0, len(o.strongest))
	for oid := range o.strongest {
		oids = append(oids, oid)
	}
	return oids
}

func sortLocks(ls []Lock) {
	sort.Slice(ls, func(i, j int) bool { return ls[i].Relation < ls[j].Relation })
}

// Row estimates for the large-table findings.
const (
	// countLimitBytes bounds the never-analyzed tables Run counts exactly.
	countLimitBytes = 32 << 20
	// bytesPerRowGuess turns the size of a larger never-analyzed table
	// into a row estimate: a heap tuple with its header and line pointer
	// rarely takes less.
	bytesPerRowGuess = 64
)

// estimateRows estimates the rows of every pre-existing relation, before
// any statement runs: reltuples where the table was analyzed. The plan's
// targets that never were are sized and, when small, counted exactly; that
// takes an ACCESS SHARE lock on them, which the statements take anyway. It
// runs under a savepoint: a target the role may not read keeps its
// reltuples-based estimate (zero).
func estimateRows(ctx context.Context, tx pgx.Tx, before *catalog, targets []string) map[uint32]int64 {
	rows := make(map[uint32]int64, len(before.rels))
	for oid, r := range before.rels {
		rows[oid] = int64(max(r.Tuples, 0))
	}
	var count []*relation
	for _, t := range targets {
		if r := before.byName(t); r != nil && r.Tuples < 0 && r.hasStorage() {
			count = append(count, r)
		}
	}
	if len(count) == 0 {
		return rows
	}
	b := &pgx.Batch{}
	b.Queue("SAVEPOINT airlock_estimate")
	for _, r := range count {
		b.Queue(fmt.Sprintf(
			"SELECT pg_relation_size($1::oid::regclass), CASE WHEN pg_relation_size($1::oid::regclass) <= $2 THEN (SELECT count(*) FROM %s) END",
			pgx.Identifier{r.Schema, r.Name}.Sanitize()), r.OID, int64(countLimitBytes))
	}
	b.Queue("RELEASE SAVEPOINT airlock_estimate")
	err := func() error {
		br := tx.SendBatch(ctx, b)
		defer br.Close()
		if _, err := br.Exec(); err != nil {
			return err
		}
		for _, r := range count {
			var size int64
			var n *int64
			if err := br.QueryRow().Scan(&size, &n); err != nil {
				return err
			}
			if n != nil {
				rows[r.OID] = *n
			} else {
				rows[r.OID] = size / bytesPerRowGuess
			}
		}
		_, err := br.Exec()
		return err
	}()
	if err != nil {
		_, _ = tx.Exec(ctx, "ROLLBACK TO SAVEPOINT airlock_estimate; RELEASE SAVEPOINT airlock_estimate")
	}
	return rows
}

// targetTables lists every table the plan's statements write or alter.
func targetTables(plan *sqlguard.MigrationPlan) []string {
	seen := map[string]bool{}
	var out []string
	for _, st := range plan.Statements {
		for _, t := range st.Targets {
			if !seen[t] {
				seen[t] = true
				out = append(out, t)
			}
		}
	}
	return out
}
