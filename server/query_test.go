package server_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/airlock-dev/airlock/internal/pgtest"
	"github.com/airlock-dev/airlock/scopes"
)

type queryOut struct {
	Columns []struct {
		Name   string `json:"name"`
		Type   string `json:"type"`
		Masked bool   `json:"masked"`
	} `json:"columns"`
	Rows            [][]json.RawMessage `json:"rows"`
	RowCount        int                 `json:"row_count"`
	Truncated       bool                `json:"truncated"`
	TruncatedReason string              `json:"truncated_reason"`
}

func (h *harness) mustQuery(sql string, params ...any) queryOut {
	h.t.Helper()
	res := h.query(sql, params...)
	if res.IsError {
		h.t.Fatalf("%s: %s", sql, text(res))
	}
	var out queryOut
	structured(h.t, res, &out)
	return out
}

func TestToolsListedPerScope(t *testing.T) {
	url := pgtest.NewDatabase(t)
	for _, tc := range []struct {
		scope string
		want  []string
	}{
		{"readonly.json", []string{"describe_table", "list_tables", "query_readonly"}},
		{"minimal.json", []string{"list_tables", "query_readonly"}},
	} {
		t.Run(tc.scope, func(t *testing.T) {
			h := newHarnessOn(t, url, tc.scope, nil)
			res, err := h.client.ListTools(context.Background(), mcp.ListToolsRequest{})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, tool := range res.Tools {
				got = append(got, tool.Name)
				if tool.Annotations.ReadOnlyHint == nil || !*tool.Annotations.ReadOnlyHint {
					t.Errorf("%s: readOnlyHint not set", tool.Name)
				}
				if tool.OutputSchema.Type != "object" {
					t.Errorf("%s: no output schema", tool.Name)
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("tools = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestQueryValuesAreTyped(t *testing.T) {
	h := newHarness(t, "support.json", nil)
	out := h.mustQuery(`SELECT true AS b, 42::int4 AS i, 9007199254740993::int8 AS big, 12::int8 AS small,
		12.50::numeric AS n, 123456789012345678901234567890::numeric AS hugen, 1.5::float8 AS f,
		'2024-03-01 12:00:00+02'::timestamptz AS ts, '2024-03-01 12:00:00'::timestamp AS t,
		'\xdeadbeef'::bytea AS bin, '{"a": [1, 2]}'::jsonb AS j, 'héllo'::text AS s, NULL::text AS nul,
		'P1D'::interval AS iv, '2024-03-01'::date AS d`)
	want := map[string]string{
		"b": `true`, "i": `42`, "big": `"9007199254740993"`, "small": `12`, "n": `12.5`,
		"hugen": `"123456789012345678901234567890"`, "f": `1.5`, "ts": `"2024-03-01T10:00:00Z"`,
		"t": `"2024-03-01T12:00:00"`, "bin": `"3q2+7w=="`, "j": `{"a":[1,2]}`, "s": `"héllo"`,
		"nul": `null`, "iv": `"P1D"`, "d": `"2024-03-01"`,
	}
	types := map[string]string{"b": "bool", "i": "int4", "big": "int8", "n": "numeric", "ts": "timestamptz", "bin": "bytea", "j": "jsonb"}
	for i, c := range out.Columns {
		if got := string(out.Rows[0][i]); got != want[c.Name] {
			t.Errorf("%s = %s, want %s", c.Name, got, want[c.Name])
		}
		if w, ok := types[c.Name]; ok && c.Type != w {
			t.Errorf("%s type = %s, want %s", c.Name, c.Type, w)
		}
	}
}

func TestQueryMaskedColumns(t *testing.T) {
	h := newHarness(t, "support.json", nil)
	out := h.mustQuery("SELECT id, email, phone, name FROM customers WHERE id IN (1, 2) ORDER BY id")
	if len(out.Rows) != 2 {
		t.Fatalf("rows = %d", len(out.Rows))
	}
	if !out.Columns[1].Masked || !out.Columns[2].Masked || out.Columns[3].Masked {
		t.Fatalf("masked flags wrong: %+v", out.Columns)
	}
	var e1, e2 string
	json.Unmarshal(out.Rows[0][1], &e1)
	json.Unmarshal(out.Rows[1][1], &e2)
	if !strings.HasPrefix(e1, "masked:") || e1 == e2 {
		t.Fatalf("emails not masked distinctly: %q %q", e1, e2)
	}
	// Stable across calls, so equality still works on returned values.
	again := h.mustQuery("SELECT email FROM customers WHERE id = $1", 1)
	var e3 string
	json.Unmarshal(again.Rows[0][0], &e3)
	if e3 != e1 {
		t.Fatalf("mask not stable: %q vs %q", e1, e3)
	}
	res := h.query("SELECT id, email, phone FROM customers ORDER BY id LIMIT 5")
	assertNoLeak(t, res)
}

func TestQueryCapsAndParams(t *testing.T) {
	h := newHarness(t, "support.json", nil)
	out := h.mustQuery("SELECT id FROM orders ORDER BY id")
	if out.RowCount != 500 || !out.Truncated || !strings.Contains(out.TruncatedReason, "count(*)") {
		t.Fatalf("cap: %+v", out.RowCount)
	}
	res := h.call(scopes.ToolQueryReadonly, map[string]any{"sql": "SELECT id FROM orders ORDER BY id", "max_rows": 3})
	var small queryOut
	structured(t, res, &small)
	if small.RowCount != 3 || !small.Truncated {
		t.Fatalf("max_rows: %+v", small)
	}
	// A LIMIT below the cap is kept and nothing is reported truncated.
	out = h.mustQuery("SELECT id FROM orders ORDER BY id LIMIT 7")
	if out.RowCount != 7 || out.Truncated {
		t.Fatalf("limit 7: %d %v", out.RowCount, out.Truncated)
	}
	out = h.mustQuery("SELECT id, status FROM orders WHERE id = $1 AND status = $2 AND $3::bool", 5, "paid", true)
	_ = out
	out = h.mustQuery("SELECT count(*) AS n FROM orders WHERE customer_id = $1", json.Number("3"))
	if out.RowCount != 1 {
		t.Fatal("count")
	}
	out = h.mustQuery("EXPLAIN SELECT id FROM orders WHERE id = 1")
	if out.RowCount == 0 || out.Columns[0].Name != "QUERY PLAN" {
		t.Fatalf("explain: %+v", out)
	}
	// Byte cap.
	res = h.call(scopes.ToolQueryReadonly, map[string]any{"sql": "SELECT repeat('x', 10000) FROM generate_series(1, 400)"})
	var big queryOut
	structured(t, res, &big)
	if !big.Truncated || big.RowCount >= 400 {
		t.Fatalf("byte cap not applied: %d rows", big.RowCount)
	}
}

func TestListAndDescribe(t *testing.T) {
	h := newHarness(t, "support.json", nil)
	res := h.call(scopes.ToolListTables, map[string]any{})
	if res.IsError {
		t.Fatal(text(res))
	}
	var lt struct {
		Tables []struct{ Name string } `json:"tables"`
	}
	structured(t, res, &lt)
	var names []string
	for _, tb := range lt.Tables {
		names = append(names, tb.Name)
	}
	if want := []string{"public.customers", "public.invoices", "public.orders", "public.products"}; !slices.Equal(names, want) {
		t.Fatalf("tables = %v", names)
	}
	if strings.Contains(text(res), "secret") || strings.Contains(text(res), "api_keys") {
		t.Fatalf("out-of-scope table named: %s", text(res))
	}

	res = h.call(scopes.ToolDescribeTable, map[string]any{"table": "customers"})
	if res.IsError {
		t.Fatal(text(res))
	}
	if strings.Contains(text(res), "ssn") {
		t.Fatalf("denied column named: %s", text(res))
	}
	var dt struct {
		Columns []struct {
			Name   string
			Masked bool
		} `json:"columns"`
		PrimaryKey []string `json:"primary_key"`
	}
	structured(t, res, &dt)
	if len(dt.Columns) != 13 || !slices.Equal(dt.PrimaryKey, []string{"id"}) {
		t.Fatalf("describe customers: %+v", dt)
	}
	for _, name := range []string{"secrets", "public.secrets", "internal.api_keys", "pg_catalog.pg_class"} {
		res := h.call(scopes.ToolDescribeTable, map[string]any{"table": name})
		if !res.IsError {
			t.Fatalf("%s described: %s", name, text(res))
		}
		assertNoLeak(t, res)
	}
	res = h.call(scopes.ToolDescribeTable, map[string]any{"table": "orders"})
	if !strings.Contains(text(res), "public.customers") {
		t.Fatalf("orders foreign key to customers not shown: %s", text(res))
	}
}

func TestBadArguments(t *testing.T) {
	h := newHarness(t, "support.json", nil)
	for name, args := range map[string]map[string]any{
		"sql not a string":   {"sql": 42},
		"missing sql":        {},
		"unknown field":      {"sql": "SELECT 1", "evil": true},
		"params not scalars": {"sql": "SELECT $1", "params": []any{map[string]any{"a": 1}}},
		"max_rows zero":      {"sql": "SELECT 1", "max_rows": 0},
	} {
		t.Run(name, func(t *testing.T) {
			res := h.call(scopes.ToolQueryReadonly, args)
			if !res.IsError {
				t.Fatalf("accepted: %s", text(res))
			}
		})
	}
	if res := h.query("SELECT 1"); res.IsError {
		t.Fatal(text(res))
	}
}
