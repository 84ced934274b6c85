package migrate

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"math/bits"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	pg "github.com/pganalyze/pg_query_go/v6"
)

// Row images bind an approval to the rows a statement touched, not only to
// how many (docs/architecture.md, Effects). For each INSERT, UPDATE and
// DELETE the runner replaces the statement's RETURNING list with the
// columns of its image and folds every returned row into an order-free
// hash: a commit whose statement reaches other rows, or gives them other
// values, than the dry run did is a drift even when the counts agree.
//
// The image is what identifies the row and what the statement decided:
//   - DELETE: every column of each deleted row (its before image);
//   - UPDATE: the row's key and the new values of the columns it sets;
//   - INSERT: the columns the statement gives values for.
//
// Columns set straight from the clock, a random source or a sequence
// (now(), gen_random_uuid(), nextval(...), CURRENT_USER, DEFAULT, and the
// like, possibly cast or shifted by a constant) are left out: they differ
// between any two runs by design, and what they will be is in the SQL the
// reviewer reads. So are columns the write role may not read: RETURNING
// needs SELECT, and a hash of a column the agent cannot see would be an
// oracle. The rows are hashed with HMAC-SHA-256 under a random salt kept
// with the change, which only the service and the reviewers can read.

// RowsEffect is the row image of one statement.
type RowsEffect struct {
	// Relation is the name RETURNING qualifies the image columns with: the
	// target's alias, or its name.
	Relation string `json:"relation,omitempty"`
	// Columns are the image's columns, in the table's order. Empty: the
	// statement's rows are compared by count only.
	Columns []string `json:"columns,omitempty"`
	// Salt is the hex HMAC key the rows were hashed with.
	Salt string `json:"salt,omitempty"`
	// Hash is the hex sum, modulo 2^256, of each returned row's HMAC: equal
	// multisets of rows give equal sums whatever the order they came in.
	Hash string `json:"hash,omitempty"`
	// Compared says in words what the image holds, for the report.
	Compared string `json:"compared,omitempty"`
}

// imagePlan is how one statement is run to capture its image.
type imagePlan struct {
	sql     string
	formats []int16
	effect  RowsEffect
}

// imageColumnsSQL lists the columns of relation $2 (in schema $1, or on the
// search path when $1 is empty) with whether each is part of the table's
// key (its primary key, else its first unique index over NOT NULL columns
// without expressions or predicate), whether its type has a binary output
// function, and whether the current role may read it.
const imageColumnsSQL = `
WITH rel AS (
  SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relname = $2 AND (n.nspname = $1 OR ($1 = '' AND pg_catalog.pg_table_is_visible(c.oid)))
  ORDER BY n.nspname = $1 DESC LIMIT 1
), key AS (
  SELECT i.indkey::int2[] AS cols FROM pg_catalog.pg_index i, rel
  WHERE i.indrelid = rel.oid AND i.indisunique AND i.indimmediate AND i.indpred IS NULL AND i.indexprs IS NULL
    AND (i.indisprimary OR NOT EXISTS (
      SELECT 1 FROM pg_catalog.pg_attribute k
      WHERE k.attrelid = rel.oid AND k.attnum = ANY (i.indkey::int2[]) AND NOT k.attnotnull))
  ORDER BY i.indisprimary DESC, i.indexrelid LIMIT 1
)
SELECT a.attname::text, coalesce(a.attnum = ANY (key.cols), false),
  t.typsend::oid <> 0, pg_catalog.has_column_privilege(rel.oid, a.attnum, 'SELECT')
FROM rel
LEFT JOIN key ON true
JOIN pg_catalog.pg_attribute a ON a.attrelid = rel.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
ORDER BY a.attnum`

type imageColumn struct {
	name            string
	key, binary, ok bool
}

// newSalt returns a fresh hex salt for a run's row images.
func newSalt() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("migrate: read random salt: %v", err)) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}

// planImage decides the image of a statement (tree, the parse of the text
// Run executes, which checkStatement made) and rewrites it to return the
// image; tree is not used afterwards. want, when set, is the image the
// dry run captured: a replay returns exactly its columns. It returns nil
// for statements without rows to image (DDL, TRUNCATE, DO).
func planImage(ctx context.Context, tx pgx.Tx, tree *pg.ParseResult, salt string, want *RowsEffect) (*imagePlan, error) {
	raw := tree.Stmts[0]
	var (
		rel      *pg.RangeVar
		verb     string
		explicit []string // columns the statement gives values for; nil: all
		clocked  map[string]bool
		setList  func([]*pg.Node)
		insert   *pg.InsertStmt
	)
	switch n := raw.Stmt.Node.(type) {
	case *pg.Node_DeleteStmt:
		rel, verb = n.DeleteStmt.Relation, "deleted"
		setList = func(l []*pg.Node) { n.DeleteStmt.ReturningList = l }
	case *pg.Node_UpdateStmt:
		rel, verb = n.UpdateStmt.Relation, "updated"
		explicit, clocked = updateColumns(n.UpdateStmt)
		setList = func(l []*pg.Node) { n.UpdateStmt.ReturningList = l }
	case *pg.Node_InsertStmt:
		rel, verb = n.InsertStmt.Relation, "inserted"
		insert = n.InsertStmt
		setList = func(l []*pg.Node) { n.InsertStmt.ReturningList = l }
	default:
		return nil, nil
	}
	if rel == nil {
		return nil, nil
	}
	cols, err := loadImageColumns(ctx, tx, rel.Schemaname, rel.Relname)
	if err != nil {
		return nil, err
	}
	if insert != nil {
		explicit, clocked = insertColumns(insert, cols)
	}
	ref := rel.Relname
	if rel.Alias != nil && rel.Alias.Aliasname != "" {
		ref = rel.Alias.Aliasname
	}
	eff := RowsEffect{Relation: ref, Salt: salt}
	var image []imageColumn
	if want != nil {
		// A replay images what the dry run imaged; a column that is gone
		// or no longer readable leaves nothing to compare, which is drift.
		for _, name := range want.Columns {
			i := slices.IndexFunc(cols, func(c imageColumn) bool { return c.name == name })
			if i < 0 || !cols[i].ok {
				return &imagePlan{effect: RowsEffect{Compared: want.Compared}}, nil
			}
			image = append(image, cols[i])
		}
		eff.Compared = want.Compared
	} else {
		image, eff.Compared = chooseImage(cols, verb, explicit, clocked)
	}
	if len(image) == 0 {
		return &imagePlan{effect: eff}, nil
	}
	list := make([]*pg.Node, len(image))
	formats := make([]int16, len(image))
	for i, c := range image {
		eff.Columns = append(eff.Columns, c.name)
		list[i] = pg.MakeResTargetNodeWithVal(pg.MakeColumnRefNode([]*pg.Node{pg.MakeStrNode(ref), pg.MakeStrNode(c.name)}, 0), 0)
		if c.binary {
			// Binary output does not depend on DateStyle, TimeZone or
			// extra_float_digits, which may differ between the dry run's
			// connection and the reviewer's.
			formats[i] = 1
		}
	}
	setList(list)
	text, err := pg.Deparse(tree)
	if err != nil {
		return nil, fmt.Errorf("render the statement with its row image: %w", err)
	}
	return &imagePlan{sql: text, formats: formats, effect: eff}, nil
}

func loadImageColumns(ctx context.Context, tx pgx.Tx, schema, rel string) ([]imageColumn, error) {
	rows, err := tx.Query(ctx, imageColumnsSQL, schema, rel)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []imageColumn
	for rows.Next() {
		var c imageColumn
		if err := rows.Scan(&c.name, &c.key, &c.binary, &c.ok); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// chooseImage picks the image columns from the table's columns (see the
// comment at the top of the file) and says what they are.
func chooseImage(cols []imageColumn, verb string, explicit []string, clocked map[string]bool) ([]imageColumn, string) {
	keyed := false
	for _, c := range cols {
		if c.key {
			keyed = true
			if !c.ok {
				keyed = false
				break
			}
		}
	}
	given := func(name string) bool { return explicit == nil || slices.Contains(explicit, name) }
	var image []imageColumn
	for _, c := range cols {
		if !c.ok || clocked[c.name] {
			continue
		}
		switch verb {
		case "deleted":
			image = append(image, c)
		case "updated":
			if (keyed && c.key) || given(c.name) {
				image = append(image, c)
			}
		case "inserted":
			if given(c.name) {
				image = append(image, c)
			}
		}
	}
	if len(image) == 0 {
		return nil, "rows affected only: the write role can read none of the columns the statement decides"
	}
	names := make([]string, len(image))
	for i, c := range image {
		names[i] = c.name
	}
	what := fmt.Sprintf("rows affected, and %s of every %s row", strings.Join(names, ", "), verb)
	switch {
	case verb == "updated" && keyed:
		what = fmt.Sprintf("rows affected, and the key and new values (%s) of every updated row", strings.Join(names, ", "))
	case verb == "updated":
		what += " (the table has no key the write role can read: rows are told apart by these values)"
	case verb == "deleted":
		what = fmt.Sprintf("rows affected, and every column the write role can read (%s) of every deleted row", strings.Join(names, ", "))
	}
	return image, what
}

// updateColumns lists the columns an UPDATE sets, and those it sets from
// the clock or a random source.
func updateColumns(u *pg.UpdateStmt) ([]string, map[string]bool) {
	explicit := []string{}
	clocked := map[string]bool{}
	for _, n := range u.TargetList {
		rt := n.GetResTarget()
		if rt == nil {
			continue
		}
		explicit = append(explicit, rt.Name)
		if len(rt.Indirection) == 0 && clockValue(rt.Val) {
			clocked[rt.Name] = true
		}
	}
	return explicit, clocked
}

// insertColumns lists the columns an INSERT gives values for and those
// whose value is the clock's or random in any row. Without a column list
// the values fill the table's first columns in order (cols); nil means
// every column, from a query whose width the parse tree does not tell.
func insertColumns(in *pg.InsertStmt, cols []imageColumn) ([]string, map[string]bool) {
	clocked := map[string]bool{}
	var names []string
	for _, n := range in.Cols {
		if rt := n.GetResTarget(); rt != nil {
			names = append(names, rt.Name)
		}
	}
	sel := in.SelectStmt.GetSelectStmt()
	if sel == nil {
		// INSERT ... DEFAULT VALUES: every value is a default.
		return []string{}, clocked
	}
	var rows [][]*pg.Node
	switch {
	case len(sel.ValuesLists) > 0:
		for _, l := range sel.ValuesLists {
			rows = append(rows, l.GetList().GetItems())
		}
	case sel.Op == pg.SetOperation_SETOP_NONE:
		var row []*pg.Node
		for _, t := range sel.TargetList {
			rt := t.GetResTarget()
			if rt == nil || isStar(rt.Val) {
				row = nil // positions past a * are unknown
				break
			}
			row = append(row, rt.Val)
		}
		if row != nil {
			rows = append(rows, row)
		}
	}
	if names == nil {
		if len(rows) == 0 {
			return nil, clocked
		}
		width := 0
		for _, row := range rows {
			width = max(width, len(row))
		}
		for i := 0; i < width && i < len(cols); i++ {
			names = append(names, cols[i].name)
		}
	}
	for _, row := range rows {
		for i, v := range row {
			if i < len(names) && clockValue(v) {
				clocked[names[i]] = true
			}
		}
	}
	return names, clocked
}

func isStar(n *pg.Node) bool {
	cr := n.GetColumnRef()
	if cr == nil {
		return false
	}
	for _, f := range cr.Fields {
		if f.GetAStar() != nil {
			return true
		}
	}
	return false
}

// clockFunctions are the pg_catalog functions whose value differs on every
// run by design.
var clockFunctions = map[string]bool{
	"now": true, "clock_timestamp": true, "statement_timestamp": true, "transaction_timestamp": true,
	"timeofday": true, "random": true, "random_normal": true, "gen_random_uuid": true,
	"nextval": true, "txid_current": true, "pg_current_xact_id": true,
}

// clockValue reports whether an expression is a value of the clock, a
// random source or a sequence: such a call (or SQL value function such as
// CURRENT_TIMESTAMP or CURRENT_USER, or DEFAULT), possibly cast, or shifted
// by a constant. Anything that also depends on the row or on data is not.
func clockValue(n *pg.Node) bool {
	switch x := n.GetNode().(type) {
	case *pg.Node_SetToDefault, *pg.Node_SqlvalueFunction:
		return true
	case *pg.Node_TypeCast:
		return clockValue(x.TypeCast.Arg)
	case *pg.Node_FuncCall:
		names := x.FuncCall.Funcname
		var schema, name string
		switch len(names) {
		case 1:
			name = names[0].GetString_().GetSval()
		case 2:
			schema, name = names[0].GetString_().GetSval(), names[1].GetString_().GetSval()
		}
		if schema == "" || schema == "pg_catalog" {
			if clockFunctions[name] {
				return true
			}
		}
		// uuid-ossp's generators, wherever the extension lives.
		return strings.HasPrefix(name, "uuid_generate_v")
	case *pg.Node_AExpr:
		e := x.AExpr
		if e.Kind != pg.A_Expr_Kind_AEXPR_OP {
			return false
		}
		return clockValue(e.Lexpr) && constant(e.Rexpr) || constant(e.Lexpr) && clockValue(e.Rexpr)
	}
	return false
}

func constant(n *pg.Node) bool {
	switch x := n.GetNode().(type) {
	case *pg.Node_AConst:
		return true
	case *pg.Node_TypeCast:
		return constant(x.TypeCast.Arg)
	}
	return false
}

// execImage runs a statement rewritten by planImage, folding each returned
// row into the image hash as it arrives: nothing of a row outlives it.
func execImage(ctx context.Context, conn *pgx.Conn, p *imagePlan) (pgconn.CommandTag, error) {
	key, err := hex.DecodeString(p.effect.Salt)
	if err != nil {
		return pgconn.CommandTag{}, fmt.Errorf("row image salt: %w", err)
	}
	rr := conn.PgConn().ExecParams(ctx, p.sql, nil, nil, nil, p.formats)
	var (
		sum rowSum
		mac = hmac.New(sha256.New, key)
		buf [4]byte
	)
	for rr.NextRow() {
		mac.Reset()
		for _, v := range rr.Values() {
			n := uint32(len(v))
			if v == nil {
				n = ^uint32(0) // NULL, distinct from the empty value
			}
			binary.BigEndian.PutUint32(buf[:], n)
			mac.Write(buf[:])
			mac.Write(v)
		}
		sum.add(mac)
	}
	tag, err := rr.Close()
	if err == nil {
		p.effect.Hash = sum.hex()
	}
	return tag, err
}

// rowSum is a 256-bit accumulator: the sum of row hashes is the same for
// the same multiset of rows in any order, and unlike XOR a row counted
// twice does not cancel out.
type rowSum [4]uint64

func (s *rowSum) add(h hash.Hash) {
	var d [sha256.Size]byte
	b := h.Sum(d[:0])
	var carry uint64
	for i := 3; i >= 0; i-- {
		w := binary.BigEndian.Uint64(b[i*8:])
		s[i], carry = bits.Add64(s[i], w, carry)
	}
}

func (s *rowSum) hex() string {
	var b [32]byte
	for i, w := range s {
		binary.BigEndian.PutUint64(b[i*8:], w)
	}
	return hex.EncodeToString(b[:])
}
