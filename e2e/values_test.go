package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/airlock-dev/airlock/internal/pgtest"
)

// wideRows is the row count of testdata/wide.sql.
const wideRows = 10000

// The value rules of README "values", one per family of types.
type valueRule int

const (
	ruleBool valueRule = iota
	ruleInt
	ruleInt8
	ruleFloat
	ruleNumeric
	ruleJSON
	ruleBytea
	ruleTimestamptz
	ruleTimestamp
	ruleText // the PostgreSQL text form, as a string
)

// wideColumns are public.wide's columns in table order, with the type name
// airlock must report and the rule its values follow.
var wideColumns = []struct {
	name, typ string
	rule      valueRule
	// pgText is how the oracle reads the text form, when col::text is not
	// the type's output function: text(inet) always shows the netmask,
	// inet_out (what airlock is sent) omits a full one.
	pgText string
}{
	{"id", "int8", ruleInt8, ""},
	{"u", "uuid", ruleText, ""},
	{"t", "text", ruleText, ""},
	{"n8", "int8", ruleInt8, ""},
	{"num", "numeric", ruleNumeric, ""},
	{"flag", "bool", ruleBool, ""},
	{"f8", "float8", ruleFloat, ""},
	{"f4", "float4", ruleFloat, ""},
	{"i2", "int2", ruleInt, ""},
	{"i4", "int4", ruleInt, ""},
	{"at", "timestamptz", ruleTimestamptz, ""},
	{"at_null", "timestamptz", ruleTimestamptz, ""},
	{"ts", "timestamp", ruleTimestamp, ""},
	{"d", "date", ruleText, ""},
	{"iv", "interval", ruleText, ""},
	{"b", "bytea", ruleBytea, ""},
	{"attrs", "jsonb", ruleJSON, ""},
	{"doc", "json", ruleJSON, ""},
	{"ints", "_int4", ruleText, ""},
	{"tags", "_text", ruleText, ""},
	{"mood", "wide_mood", ruleText, ""},
	{"pair", "wide_pair", ruleText, ""},
	{"addr", "inet", ruleText, "textin(inet_out(addr))"},
}

func wideColumn(name string) (int, bool) {
	for i, c := range wideColumns {
		if c.name == name {
			return i, true
		}
	}
	return 0, false
}

// pgCell is one value as the superuser reads it straight from PostgreSQL:
// its text form (col::text), and for bytea and timestamptz the value itself
// in binary, so that those checks do not rest on parsing text.
type pgCell struct {
	null    bool
	text    string
	bytes   []byte
	instant pgtype.Timestamptz
}

// wideOracle maps id to the row's cells, in wideColumns order.
type wideOracle map[int64][]pgCell

// loadWide loads testdata/wide.sql into the database at url and reads the
// whole table back as the oracle, under the output settings query_readonly
// sets for its transaction (tools.ReadSetup), so that the text forms are
// the ones airlock is given.
func loadWide(t *testing.T, url string) wideOracle {
	t.Helper()
	ctx := context.Background()
	sql, err := os.ReadFile(pgtest.Testdata("wide.sql"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"TimeZone": "UTC", "IntervalStyle": "iso_8601", "DateStyle": "ISO, YMD", "bytea_output": "hex"} {
		cfg.RuntimeParams[k] = v
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	t0 := time.Now()
	if _, err := conn.Exec(ctx, string(sql)); err != nil {
		t.Fatalf("load wide.sql: %v", err)
	}
	t.Logf("loaded wide.sql in %v", time.Since(t0))

	sel := make([]string, 0, len(wideColumns)+3)
	for _, c := range wideColumns {
		if c.pgText != "" {
			sel = append(sel, c.pgText)
		} else {
			sel = append(sel, c.name+"::text")
		}
	}
	sel = append(sel, "b", "at", "at_null")
	rows, err := conn.Query(ctx, "SELECT "+strings.Join(sel, ", ")+" FROM public.wide")
	if err != nil {
		t.Fatal(err)
	}
	oracle := wideOracle{}
	texts := make([]pgtype.Text, len(wideColumns))
	dest := make([]any, 0, len(wideColumns)+3)
	for i := range texts {
		dest = append(dest, &texts[i])
	}
	var b []byte
	var at, atNull pgtype.Timestamptz
	dest = append(dest, &b, &at, &atNull)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			t.Fatal(err)
		}
		cells := make([]pgCell, len(wideColumns))
		for i, tx := range texts {
			cells[i] = pgCell{null: !tx.Valid, text: tx.String}
		}
		id, _ := strconv.ParseInt(cells[0].text, 10, 64)
		cells[indexOf("b")].bytes = append([]byte(nil), b...)
		cells[indexOf("at")].instant = at
		cells[indexOf("at_null")].instant = atNull
		oracle[id] = cells
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(oracle) != wideRows {
		t.Fatalf("oracle holds %d rows, want %d", len(oracle), wideRows)
	}
	return oracle
}

func indexOf(name string) int {
	i, ok := wideColumn(name)
	if !ok {
		panic("no column " + name)
	}
	return i
}

// wideScope writes a scope over public.wide; read holds the read section's
// fields besides tables.
func wideScope(t *testing.T, name, table, read string) string {
	t.Helper()
	body := fmt.Sprintf(`{"name": %q, "read": {"tables": {"public.wide": %s}%s}}`, name, table, read)
	path := filepath.Join(t.TempDir(), name+".json")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// wideAnswer is query_readonly's structuredContent with every cell kept as
// the bytes that came over the wire.
type wideAnswer struct {
	Columns []struct {
		Name   string `json:"name"`
		Type   string `json:"type"`
		Masked bool   `json:"masked"`
	} `json:"columns"`
	Rows            []json.RawMessage `json:"rows"`
	RowCount        int               `json:"row_count"`
	Truncated       bool              `json:"truncated"`
	TruncatedReason string            `json:"truncated_reason"`

	cells     [][]json.RawMessage // the structured rows' cells
	textCells [][]json.RawMessage // the text content's rows' cells
}

// query calls query_readonly and returns its answer, after checking that
// the text content's rows are the structured rows, line for line.
func query(t *testing.T, c *client.Client, sql string, params ...any) *wideAnswer {
	t.Helper()
	args := map[string]any{"sql": sql}
	if len(params) > 0 {
		args["params"] = params
	}
	res := call(t, c, "query_readonly", args)
	if res.IsError {
		t.Fatalf("%s: %s", sql, resultText(res))
	}
	if len(res.RawStructuredContent) == 0 {
		t.Fatalf("%s: no structuredContent", sql)
	}
	var a wideAnswer
	if err := json.Unmarshal(res.RawStructuredContent, &a); err != nil {
		t.Fatalf("%s: decode structuredContent: %v", sql, err)
	}
	if a.RowCount != len(a.Rows) {
		t.Fatalf("%s: row_count %d, %d rows", sql, a.RowCount, len(a.Rows))
	}
	a.cells = make([][]json.RawMessage, len(a.Rows))
	for i, r := range a.Rows {
		if err := json.Unmarshal(r, &a.cells[i]); err != nil {
			t.Fatalf("%s: row %d: %v", sql, i, err)
		}
		if len(a.cells[i]) != len(a.Columns) {
			t.Fatalf("%s: row %d has %d cells for %d columns", sql, i, len(a.cells[i]), len(a.Columns))
		}
	}
	lines := textRows(t, res)
	if len(lines) != len(a.Rows) {
		t.Fatalf("%s: the text content has %d row lines, the structured content %d rows", sql, len(lines), len(a.Rows))
	}
	a.textCells = make([][]json.RawMessage, len(lines))
	for i, line := range lines {
		if err := sameJSON([]byte(line), a.Rows[i]); err != nil {
			t.Fatalf("%s: row %d: text line %s\nstructured row %s\n%v", sql, i, line, a.Rows[i], err)
		}
		if err := json.Unmarshal([]byte(line), &a.textCells[i]); err != nil {
			t.Fatalf("%s: text row %d: %v", sql, i, err)
		}
	}
	return &a
}

var rowsOpen = regexp.MustCompile(`(?m)^<(rows-[0-9a-f]{12})>\n`)

// textRows returns the lines between the text content's rows markers.
func textRows(t *testing.T, res *mcp.CallToolResult) []string {
	t.Helper()
	if len(res.Content) != 1 {
		t.Fatalf("%d content items, want 1", len(res.Content))
	}
	tc, ok := res.Content[0].(mcp.TextContent)
	if !ok {
		t.Fatalf("content is a %T", res.Content[0])
	}
	m := rowsOpen.FindStringSubmatchIndex(tc.Text)
	if m == nil {
		t.Fatalf("no rows marker in the text content:\n%.500s", tc.Text)
	}
	token := tc.Text[m[2]:m[3]]
	body := tc.Text[m[1]:]
	end := strings.Index(body, "</"+token+">")
	if end < 0 || !strings.HasSuffix(tc.Text, "</"+token+">") {
		t.Fatalf("the rows marker %s is not closed at the end of the text content", token)
	}
	body = body[:end]
	// The first line names the columns.
	if _, rest, ok := strings.Cut(body, "\n"); !ok {
		t.Fatalf("no column line inside the rows markers")
	} else {
		body = rest
	}
	if body == "" {
		return nil
	}
	if !strings.HasSuffix(body, "\n") {
		t.Fatalf("the last row line does not end with a newline")
	}
	return strings.Split(strings.TrimSuffix(body, "\n"), "\n")
}

// sameJSON reports how a and b differ as JSON token streams: the same
// values with object keys in the same order, duplicates included, and
// numbers compared as written. Whitespace and string escapes may differ.
func sameJSON(a, b []byte) error {
	da, db := json.NewDecoder(bytes.NewReader(a)), json.NewDecoder(bytes.NewReader(b))
	da.UseNumber()
	db.UseNumber()
	for n := 0; ; n++ {
		ta, ea := da.Token()
		tb, eb := db.Token()
		if ea == io.EOF && eb == io.EOF {
			return nil
		}
		if ea != nil || eb != nil {
			return fmt.Errorf("token %d: %v / %v", n, ea, eb)
		}
		if ta != tb {
			return fmt.Errorf("token %d: %#v, want %#v", n, ta, tb)
		}
	}
}

// decodeCell decodes one cell with numbers kept as written.
func decodeCell(raw json.RawMessage) (any, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, fmt.Errorf("trailing data after the value")
	}
	return v, nil
}

const maxExactInt = 1 << 53

// specialFloats are the float text forms that have no JSON number.
var specialFloats = map[string]bool{"Infinity": true, "-Infinity": true, "NaN": true}

var (
	plainDecimal = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)
	timestampFmt = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?$`)
)

// significantDigits counts a plain decimal's digits from its first
// non-zero one.
func significantDigits(s string) int {
	n := 0
	for _, r := range s {
		if r >= '0' && r <= '9' && (n > 0 || r != '0') {
			n++
		}
	}
	return n
}

// cutAt is s cut to at most limit bytes on a rune boundary, as a capped
// cell is.
func cutAt(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// checkCell checks one answer cell against PostgreSQL's value under the
// README's rules, with cellCap the scope's max_cell_bytes. cut says
// whether the cell was cut by that cap.
func checkCell(rule valueRule, raw json.RawMessage, pg pgCell, cellCap int) (cut bool, err error) {
	v, err := decodeCell(raw)
	if err != nil {
		return false, fmt.Errorf("not JSON: %s: %v", raw, err)
	}
	if pg.null {
		if v != nil {
			return false, fmt.Errorf("got %s, want null", raw)
		}
		return false, nil
	}
	str, isStr := v.(string)
	num, isNum := v.(json.Number)
	wantString := func(want string) error {
		if !isStr || str != want {
			return fmt.Errorf("got %s, want the string %q", raw, want)
		}
		return nil
	}
	wantNumber := func(want string) error {
		if !isNum || num.String() != want {
			return fmt.Errorf("got %s, want the number %s", raw, want)
		}
		return nil
	}
	switch rule {
	case ruleBool:
		if b, ok := v.(bool); !ok || b != (pg.text == "true") {
			return false, fmt.Errorf("got %s, want %s", raw, pg.text)
		}
		return false, nil
	case ruleInt:
		return false, wantNumber(pg.text)
	case ruleInt8:
		n, err := strconv.ParseInt(pg.text, 10, 64)
		if err != nil {
			return false, err
		}
		if n <= maxExactInt && n >= -maxExactInt {
			return false, wantNumber(pg.text)
		}
		return false, wantString(pg.text)
	case ruleFloat:
		if specialFloats[pg.text] {
			return false, wantString(pg.text)
		}
		return false, wantNumber(pg.text)
	case ruleNumeric:
		if plainDecimal.MatchString(pg.text) && significantDigits(pg.text) <= 15 {
			return false, wantNumber(pg.text)
		}
		return false, wantString(pg.text)
	case ruleJSON:
		if len(pg.text) > cellCap {
			return true, wantString(cutAt(pg.text, cellCap))
		}
		if err := sameJSON(raw, []byte(pg.text)); err != nil {
			return false, fmt.Errorf("got %s, want %s: %v", raw, pg.text, err)
		}
		return false, nil
	case ruleBytea:
		enc := base64.StdEncoding.EncodeToString(pg.bytes)
		if len(enc) > cellCap {
			enc, cut = enc[:cellCap/4*4], true
		}
		if err := wantString(enc); err != nil {
			return cut, err
		}
		if dec, err := base64.StdEncoding.DecodeString(str); err != nil || !cut && !bytes.Equal(dec, pg.bytes) {
			return cut, fmt.Errorf("got %s, which does not decode to %x (%v)", raw, pg.bytes, err)
		}
		return cut, nil
	case ruleTimestamptz:
		in := pg.instant
		if in.InfinityModifier != pgtype.Finite || in.Time.Year() < 1 || in.Time.Year() > 9999 {
			// RFC 3339 has no infinity, BC or five-digit years.
			return false, wantString(pg.text)
		}
		if !isStr || !strings.HasSuffix(str, "Z") {
			return false, fmt.Errorf("got %s, want an RFC 3339 UTC string for %s", raw, pg.text)
		}
		got, err := time.Parse(time.RFC3339Nano, str)
		if err != nil {
			return false, fmt.Errorf("got %s: %v", raw, err)
		}
		if !got.Equal(in.Time) {
			return false, fmt.Errorf("got %s, want the instant %s (%s)", raw, in.Time.UTC().Format(time.RFC3339Nano), pg.text)
		}
		return false, nil
	case ruleTimestamp:
		if pg.text == "infinity" || pg.text == "-infinity" || strings.HasSuffix(pg.text, " BC") {
			// As for timestamptz: ISO 8601 has no infinity or era suffix.
			return false, wantString(pg.text)
		}
		if err := wantString(strings.Replace(pg.text, " ", "T", 1)); err != nil {
			return false, err
		}
		if !timestampFmt.MatchString(str) {
			return false, fmt.Errorf("got %s, not YYYY-MM-DDTHH:MM:SS[.ffffff]", raw)
		}
		return false, nil
	case ruleText:
		want := cutAt(pg.text, cellCap)
		return len(want) < len(pg.text), wantString(want)
	}
	return false, fmt.Errorf("no rule %d", rule)
}

// checkRows checks every cell of a against the oracle and returns the ids
// of its rows in order and the number of cells the cell cap cut. The first
// column must be id.
func checkRows(t *testing.T, a *wideAnswer, oracle wideOracle, cellCap int) (ids []int64, cut int) {
	t.Helper()
	if len(a.Columns) == 0 || a.Columns[0].Name != "id" {
		t.Fatalf("the first column is not id: %+v", a.Columns)
	}
	cols := make([]int, len(a.Columns))
	for j, c := range a.Columns {
		i, ok := wideColumn(c.Name)
		if !ok {
			t.Fatalf("unexpected column %q", c.Name)
		}
		if c.Type != wideColumns[i].typ {
			t.Errorf("column %s has type %q, want %q", c.Name, c.Type, wideColumns[i].typ)
		}
		cols[j] = i
	}
	failed := map[string]int{}
	for r, cells := range a.cells {
		id, err := strconv.ParseInt(string(cells[0]), 10, 64)
		if err != nil {
			t.Fatalf("row %d: id %s: %v", r, cells[0], err)
		}
		want, ok := oracle[id]
		if !ok {
			t.Fatalf("row %d: no row with id %d", r, id)
		}
		ids = append(ids, id)
		for j, raw := range cells {
			i := cols[j]
			c, err := checkCell(wideColumns[i].rule, raw, want[i], cellCap)
			if c {
				cut++
			}
			if err == nil && !c && !want[i].null && wideColumns[i].rule == ruleJSON && a.textCells != nil {
				err = exactJSON(a.textCells[r][j], want[i].text, wideColumns[i].typ)
			}
			if err != nil {
				name := wideColumns[i].name
				if failed[name]++; failed[name] <= 5 {
					t.Errorf("id %d, column %s (%s): %v", id, name, wideColumns[i].typ, err)
				}
			}
		}
	}
	for name, n := range failed {
		if n > 5 {
			t.Errorf("column %s: %d wrong cells in all", name, n)
		}
	}
	return ids, cut
}

// exactJSON checks a json or jsonb cell of the text content, which reaches
// the client as airlock wrote it (the structured content is re-encoded by
// the transport), against PostgreSQL's text: compacted (json keeps its
// input's whitespace, newlines included, which a value on one line of the
// text cannot), with U+2028 and U+2029 escaped as in every other string
// airlock writes, and otherwise unchanged: escapes, duplicate keys, key
// order, numbers as written.
func exactJSON(got json.RawMessage, pgText, typ string) error {
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(pgText)); err != nil {
		return err
	}
	want := strings.NewReplacer("\u2028", `\u2028`, "\u2029", `\u2029`).Replace(b.String())
	if string(got) != want {
		return fmt.Errorf("text content has %s, want %s (%s)", got, want, typ)
	}
	return nil
}

func wantIDs(t *testing.T, ids []int64, from, n int64) {
	t.Helper()
	if int64(len(ids)) != n {
		t.Fatalf("%d rows, want %d", len(ids), n)
	}
	for i, id := range ids {
		if id != from+int64(i) {
			t.Fatalf("row %d has id %d, want %d", i, id, from+int64(i))
		}
	}
}

// TestWideValues proves query_readonly's values over the built binary:
// every cell of every row of public.wide, read through airlock as the
// agent sees it, is checked against what PostgreSQL holds for that row,
// under the README's value rules. Answers of hundreds of rows and more are
// where values once came back holding other rows' bytes.
func TestWideValues(t *testing.T) {
	url := pgtest.NewDatabase(t)
	oracle := loadWide(t, url)
	const big = `, "max_bytes": 67108864`

	t.Run("select_star_1000", func(t *testing.T) {
		c := startAirlock(t, url, wideScope(t, "wide", `{}`, `, "max_rows": 1000`+big))
		a := query(t, c, "SELECT * FROM wide ORDER BY id")
		if len(a.Columns) != len(wideColumns) {
			t.Fatalf("%d columns, want %d", len(a.Columns), len(wideColumns))
		}
		for i, col := range a.Columns {
			if col.Name != wideColumns[i].name {
				t.Fatalf("column %d is %s, want %s", i, col.Name, wideColumns[i].name)
			}
		}
		ids, cut := checkRows(t, a, oracle, 16384)
		wantIDs(t, ids, 1, 1000)
		if cut != 0 || !a.Truncated || !strings.Contains(a.TruncatedReason, "more than 1000 rows") {
			t.Fatalf("truncated %v (%q), %d cells cut; want the row cap only", a.Truncated, a.TruncatedReason, cut)
		}

		// The jsonb column alone, paged by key through the whole table.
		var all []int64
		var pages int
		for last := int64(0); ; pages++ {
			a := query(t, c, "SELECT id, attrs FROM wide WHERE id > $1 ORDER BY id", last)
			ids, _ := checkRows(t, a, oracle, 16384)
			all = append(all, ids...)
			if !a.Truncated {
				break
			}
			if len(ids) != 1000 {
				t.Fatalf("page %d: %d rows, truncated", pages, len(ids))
			}
			last = ids[len(ids)-1]
		}
		wantIDs(t, all, 1, wideRows)
		t.Logf("%d pages of attrs", pages+1)
	})

	t.Run("select_star_all", func(t *testing.T) {
		c := startAirlock(t, url, wideScope(t, "wide-all", `{}`, `, "max_rows": 10000, "statement_timeout_ms": 20000`+big))
		a := query(t, c, "SELECT * FROM wide ORDER BY id")
		ids, cut := checkRows(t, a, oracle, 16384)
		wantIDs(t, ids, 1, wideRows)
		if a.Truncated || cut != 0 {
			t.Fatalf("truncated %v (%q), %d cells cut", a.Truncated, a.TruncatedReason, cut)
		}
	})

	t.Run("cell_cap", func(t *testing.T) {
		const cellCap = 1024
		c := startAirlock(t, url, wideScope(t, "wide-cell", `{}`, fmt.Sprintf(`, "max_rows": 1000, "max_cell_bytes": %d`, cellCap)+big))
		a := query(t, c, "SELECT id, flag, n8, attrs, doc, b, t FROM wide ORDER BY id")
		ids, cut := checkRows(t, a, oracle, cellCap)
		wantIDs(t, ids, 1, 1000)
		// The ~10 KB jsonb values of every 50th row, and the long bytea
		// values of every 250th, are the cells over the cap.
		var bigJSON, whole int
		for _, cells := range a.cells {
			switch v, _ := decodeCell(cells[3]); v := v.(type) {
			case string:
				if strings.HasPrefix(v, `{"id": `) {
					bigJSON++
				}
			case map[string]any:
				whole++
			}
		}
		if bigJSON != 20 || whole < 900 {
			t.Errorf("%d jsonb values cut to strings, %d whole; want 20 cut and the rest whole", bigJSON, whole)
		}
		want := fmt.Sprintf("%d cell(s) longer than %d bytes were cut", cut, cellCap)
		if cut < 20 || !a.Truncated || !strings.Contains(a.TruncatedReason, want) {
			t.Fatalf("truncated %v, reason %q; want it to say %q", a.Truncated, a.TruncatedReason, want)
		}
	})

	t.Run("masked", func(t *testing.T) {
		c := startAirlock(t, url, wideScope(t, "wide-mask", `{"mask": ["t", "mood", "attrs"]}`, `, "max_rows": 1000`))
		a := query(t, c, "SELECT id, t, mood, attrs, flag FROM wide ORDER BY id")
		if len(a.Rows) != 1000 {
			t.Fatalf("%d rows", len(a.Rows))
		}
		// The key is kept as the HMAC's pads (docs/architecture.md,
		// Masking): HMAC(k, m) = sha256(opad || sha256(ipad || m)).
		var ipad, opad []byte
		conn := pgtest.Connect(t, url)
		if err := conn.QueryRow(context.Background(), "SELECT ipad, opad FROM airlock_wide_mask.mask_key").Scan(&ipad, &opad); err != nil {
			t.Fatal(err)
		}
		maskRe := regexp.MustCompile(`^masked:[0-9a-f]{24}$`)
		for j, col := range a.Columns {
			masked := col.Name == "t" || col.Name == "mood" || col.Name == "attrs"
			if col.Masked != masked {
				t.Errorf("column %s masked %v, want %v", col.Name, col.Masked, masked)
			}
			if !masked {
				continue
			}
			i := indexOf(col.Name)
			byValue, byHash := map[string]string{}, map[string]string{}
			for _, cells := range a.cells {
				id, _ := strconv.ParseInt(string(cells[0]), 10, 64)
				pg := oracle[id][i]
				v, err := decodeCell(cells[j])
				if err != nil {
					t.Fatal(err)
				}
				if pg.null {
					if v != nil {
						t.Errorf("id %d, %s: NULL masked as %s", id, col.Name, cells[j])
					}
					continue
				}
				s, _ := v.(string)
				if !maskRe.MatchString(s) {
					t.Fatalf("id %d, %s: %s is not masked:<24 hex>", id, col.Name, cells[j])
				}
				// The hash is of the value's text form under the scope's key.
				inner := sha256.Sum256(append(bytes.Clone(ipad), pg.text...))
				outer := sha256.Sum256(append(bytes.Clone(opad), inner[:]...))
				if want := "masked:" + hex.EncodeToString(outer[:12]); s != want {
					t.Errorf("id %d, %s: %s, want %s", id, col.Name, s, want)
				}
				if h, ok := byValue[pg.text]; ok && h != s {
					t.Errorf("%s: equal values %q hash to %s and %s", col.Name, pg.text, h, s)
				}
				if v, ok := byHash[s]; ok && v != pg.text {
					t.Errorf("%s: %q and %q hash alike", col.Name, v, pg.text)
				}
				byValue[pg.text], byHash[s] = s, pg.text
			}
			if col.Name == "mood" && len(byHash) != 4 {
				t.Errorf("mood: %d distinct hashes, want 4", len(byHash))
			}
		}
		ids, _ := checkRows(t, project(a, 0, 4), oracle, 16384)
		wantIDs(t, ids, 1, 1000)
	})
}

// project is a with only the columns at the given positions.
func project(a *wideAnswer, cols ...int) *wideAnswer {
	p := &wideAnswer{cells: make([][]json.RawMessage, len(a.cells)), textCells: make([][]json.RawMessage, len(a.textCells))}
	for _, j := range cols {
		p.Columns = append(p.Columns, a.Columns[j])
	}
	for i := range a.cells {
		for _, j := range cols {
			p.cells[i] = append(p.cells[i], a.cells[i][j])
			p.textCells[i] = append(p.textCells[i], a.textCells[i][j])
		}
	}
	return p
}

// TestValuesJSONNumberBeyondFloat64: a json or jsonb value may hold a
// number no float64 can hold (PostgreSQL's json keeps 1e400 as written;
// jsonb turns it into a 401-digit integer). The answer must still be one
// every client can read: mcp-go's client, like most JSON decoders, reads
// structuredContent's numbers as float64 and rejects the whole response
// when one overflows. Wanted: the cell as a JSON value whose numbers all fit
// a float64, or as its PostgreSQL text in a string (the rule int8 and
// numeric follow), and the other cells intact.
func TestValuesJSONNumberBeyondFloat64(t *testing.T) {
	url := pgtest.NewDatabase(t)
	scope := filepath.Join(t.TempDir(), "json-range.json")
	if err := os.WriteFile(scope, []byte(`{"name": "json-range", "read": {"tables": {"public.orders": {}}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c := startAirlock(t, url, scope)
	conn := pgtest.Connect(t, url)
	for _, tc := range []struct{ name, typ, value string }{
		{"json_object", "json", `{"n": 1e400}`},
		{"json_negative", "json", `[-1e400, 1]`},
		{"jsonb", "jsonb", `{"n": 1e400}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sql := "SELECT 1 AS id, $1::" + tc.typ + " AS doc"
			var pgText string
			if err := conn.QueryRow(context.Background(), "SELECT $1::"+tc.typ+"::text", tc.value).Scan(&pgText); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			req := mcp.CallToolRequest{}
			req.Params.Name = "query_readonly"
			req.Params.Arguments = map[string]any{"sql": sql, "params": []any{tc.value}}
			res, err := c.CallTool(ctx, req)
			if err != nil {
				t.Fatalf("value %s (PostgreSQL text %.60s): the client cannot read the answer: %.200v", tc.value, pgText, err)
			}
			if res.IsError {
				t.Fatalf("%s", resultText(res))
			}
			var a wideAnswer
			if err := json.Unmarshal(res.RawStructuredContent, &a); err != nil || len(a.Rows) != 1 {
				t.Fatalf("structuredContent %s: %v", res.RawStructuredContent, err)
			}
			var cells []json.RawMessage
			if err := json.Unmarshal(a.Rows[0], &cells); err != nil || len(cells) != 2 || string(cells[0]) != "1" {
				t.Fatalf("row %s: %v", a.Rows[0], err)
			}
			var s string
			if json.Unmarshal(cells[1], &s) == nil {
				if s != pgText {
					t.Fatalf("got the string %q, want %q", s, pgText)
				}
				return
			}
			var v any
			if err := json.Unmarshal(cells[1], &v); err != nil {
				t.Fatalf("got %s, which a float64 decoder rejects: %v", cells[1], err)
			}
		})
	}
}

// TestValuesTimestampBC: a timestamp before year 1 has PostgreSQL text
// "0044-03-15 12:00:00 BC". RFC 3339 cannot write it, and timestamptz falls
// back to the PostgreSQL text for such values; the rule for timestamp is
// YYYY-MM-DDTHH:MM:SS[.ffffff]. Wanted: one or the other, not a mix.
func TestValuesTimestampBC(t *testing.T) {
	url := pgtest.NewDatabase(t)
	scope := filepath.Join(t.TempDir(), "ts-bc.json")
	if err := os.WriteFile(scope, []byte(`{"name": "ts-bc", "read": {"tables": {"public.orders": {}}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c := startAirlock(t, url, scope)
	for _, in := range []string{"0044-03-15 12:00:00 BC", "0001-01-01 00:00:00.5 BC"} {
		a := query(t, c, "SELECT 1 AS id, $1::timestamp AS ts, $1::timestamp::text AS pg", in)
		var got, pg string
		if json.Unmarshal(a.cells[0][1], &got) != nil || json.Unmarshal(a.cells[0][2], &pg) != nil {
			t.Fatalf("row %s", a.Rows[0])
		}
		if got != pg && !timestampFmt.MatchString(got) {
			t.Errorf("timestamp %q (PostgreSQL text %q): got %q, neither the PostgreSQL text nor YYYY-MM-DDTHH:MM:SS[.ffffff]", in, pg, got)
		}
	}
}
