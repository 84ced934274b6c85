package tools

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestCheckInput(t *testing.T) {
	for _, tc := range []struct {
		name, sql, code string
	}{
		{"ok", "SELECT 1", ""},
		{"empty", "", "empty_sql"},
		{"blank", " \n\t", "empty_sql"},
		{"too large", "SELECT 1" + strings.Repeat(" ", 100), "sql_too_large"},
		{"nul", "SELECT 1\x00", "nul_byte"},
		{"invalid utf-8", "SELECT '\xff\xfe'", "invalid_utf8"},
		{"truncated rune", "SELECT '\xe2\x82'", "invalid_utf8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := CheckInput(tc.sql, 64)
			switch {
			case tc.code == "" && r != nil:
				t.Fatalf("refused: %v", r)
			case tc.code != "" && (r == nil || r.Code != tc.code):
				t.Fatalf("got %v, want %s", r, tc.code)
			}
		})
	}
}

func TestCellValue(t *testing.T) {
	for _, tc := range []struct {
		name string
		oid  uint32
		in   string
		want string
		cut  bool
	}{
		{"bool", oidBool, "t", "true", false},
		{"int8 small", oidInt8, "42", "42", false},
		{"int8 big", oidInt8, "9007199254740993", `"9007199254740993"`, false},
		{"numeric exact", oidNumeric, "12.50", "12.50", false},
		{"numeric long", oidNumeric, "1234567890.1234567", `"1234567890.1234567"`, false},
		{"numeric nan", oidNumeric, "NaN", `"NaN"`, false},
		{"float inf", oidFloat8, "Infinity", `"Infinity"`, false},
		{"timestamptz", oidTimestamptz, "2024-03-01 10:00:00.5+00", `"2024-03-01T10:00:00.5Z"`, false},
		{"timestamptz offset", oidTimestamptz, "2024-03-01 10:00:00+05:30", `"2024-03-01T10:00:00+05:30"`, false},
		{"bytea", oidBytea, `\xdeadbeef`, `"3q2+7w=="`, false},
		{"text cut on rune", 25, "héllo wörld", `"héllo w"`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, cut := appendCell(nil, tc.oid, []byte(tc.in), 8)
			got := string(b)
			if got != tc.want || cut != tc.cut {
				t.Fatalf("got %s (cut %v), want %s (cut %v)", got, cut, tc.want, tc.cut)
			}
		})
	}
}

func jsonString(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
