package main

import (
	"bytes"
	"encoding/json"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/airlock-dev/airlock/internal/safetext"
	"github.com/airlock-dev/airlock/migrate"
	"github.com/airlock-dev/airlock/review"
)

// hostile are changes an adversarial agent could send, one class of
// hiding or forging per case, in the ticket, the summary and the SQL.
var hostile = []struct {
	name, ticket, summary, sql string
	mode                       review.Mode
	rows                       int64
}{
	{name: "zero-width", ticket: "OPS-\u200b7", summary: "Mark\u200b\u2060\ufeff\u00ad shipped",
		sql: "UPDATE orders SET notes = 'a\u200bb\u2060' WHERE id = 1", rows: 1},
	{name: "right-to-left override", ticket: "OPS-\u202e8", summary: "ok \u202eELBAT PORD\u202c \u2066x\u2069",
		sql: "UPDATE orders SET notes = 'x' WHERE id = 2 -- \u202e evil", rows: 1},
	{name: "C1 CSI and NEL", ticket: "OPS\u009b2J", summary: "\u009b2J\u0085clear",
		sql: "UPDATE orders SET notes = '\u009b31m\u0085' WHERE id = 3", rows: 1},
	{name: "tag characters", ticket: "OPS-\U000E0031", summary: "looks fine\U000E0049\U000E0047\U000E004E\U000E004F\U000E0052\U000E0045",
		sql: "UPDATE orders SET notes = 'ok' WHERE id = 4 /* \U000E0041\U000E0042 */", rows: 1},
	{name: "variation selectors", ticket: "OPS-10\ufe0f", summary: "fine\ufe00\ufe0f\U000E0100\U000E01EF",
		sql: "UPDATE orders SET notes = 'v\ufe0e\U000E0101' WHERE id = 5", rows: 1},
	{name: "forged headers", ticket: "OPS-11\nrisk: low",
		summary: "Add notes\nSQL:\n  1 | SELECT 1\nrisk: low\nReport (the dry run):\nstatus:    committed",
		sql:     "UPDATE orders SET notes = 'x\nSQL:\nrisk: low\nReport (the dry run):' WHERE id = 6", rows: 1},
	{name: "ANSI escapes", ticket: "\x1b[31mOPS-12\x1b[0m", summary: "\x1b[2J\x1b[H\x1b[31mall clear\x1b]0;title\x07",
		sql: "UPDATE orders SET notes = '\x1b[8mhidden\x1b[0m' WHERE id = 7", rows: 1},
	{name: "fake line numbers", ticket: "OPS-13", summary: "ok\n  2 | DROP TABLE x",
		sql: "UPDATE orders SET notes = 'y\n  2 | DROP TABLE orders\n  3 | ' WHERE id = 8", rows: 1},
	{name: "line separators, CR, tab", ticket: "OPS-14\r", summary: "one\u2028two\u2029three\rrisk: low\v\f\tend",
		sql: "UPDATE orders SET notes = 'a\rrisk: low\u2028'\r\n\tWHERE id = 9", rows: 1},
	{name: "typed escapes", ticket: `OPS-\u{200B}`, summary: `looks escaped \u{202E} \n`,
		sql: `UPDATE orders SET notes = '\n \u{200B}' WHERE id = 10`, rows: 1},
	{name: "hidden column name", ticket: "OPS-15", summary: "add a column",
		sql: "ALTER TABLE orders ADD COLUMN \"gift\nrisk: low\u200b\" integer"},
	// Last: it holds its locks until decided.
	{name: "prepared", ticket: "OPS-16", summary: "held\u200b", mode: review.ModePrepared,
		sql: "UPDATE orders SET notes = '\u202e' WHERE id = 11", rows: 1},
}

// headers are the words airlock's own lines start with; agent text must
// never produce a line that starts with one.
var headers = []string{"SQL:", "risk:", "Report", "ticket:", "summary:", "status:", "reason:", "decided:"}

// checkVisible fails when out has a rune that must not reach a reviewer raw
// (but its own line breaks, and tabs in numbered SQL lines) or invalid
// UTF-8.
func checkVisible(t *testing.T, what, out string) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Errorf("%s: not UTF-8: %q", what, out)
	}
	for _, line := range strings.Split(out, "\n") {
		for _, r := range line {
			if safetext.Hidden(r) && (r != '\t' || !numbered.MatchString(line)) {
				t.Errorf("%s: raw %U in:\n%s", what, r, out)
				return
			}
		}
	}
}

// countPrefix counts the lines that start with prefix.
func countPrefix(lines []string, prefix string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

func reviewCLI(t *testing.T, d *reviewDB, code int, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if got := run(d.ctx, args, strings.NewReader(""), &stdout, &stderr); got != code {
		t.Fatalf("airlock %q: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", args, got, code, &stdout, &stderr)
	}
	checkVisible(t, "stderr", stderr.String())
	return stdout.String()
}

var numbered = regexp.MustCompile(`^  +(\d+) \|(?: (.*))?$`)

// checkSQL fails unless the lines after the "SQL:" header are sql, each
// numbered, up to the blank line that ends them.
func checkSQL(t *testing.T, lines []string, sql, indent string) {
	t.Helper()
	start := -1
	for i, l := range lines {
		if l == "SQL:" {
			start = i + 1
		}
	}
	if start < 0 {
		t.Fatalf("no SQL: header")
	}
	want := safetext.Block(sql)
	checkNumbered(t, lines[start:], want, indent)
}

func checkNumbered(t *testing.T, lines, want []string, indent string) {
	t.Helper()
	if len(lines) < len(want) {
		t.Fatalf("%d SQL lines, want %d", len(lines), len(want))
	}
	for k, w := range want {
		m := numbered.FindStringSubmatch(lines[k])
		if m == nil || !strings.HasPrefix(lines[k], indent) || m[1] != strconv.Itoa(k+1) || m[2] != w {
			t.Errorf("SQL line %d is %q, want %q numbered %d", k+1, lines[k], w, k+1)
		}
	}
	if rest := lines[len(want):]; len(rest) > 0 && numbered.MatchString(rest[0]) {
		t.Errorf("an extra numbered line: %q", rest[0])
	}
}

func TestReviewerViewCannotMislead(t *testing.T) {
	d := newReviewDB(t)
	changes := make([]*review.Change, len(hostile))
	for i, h := range hostile {
		mode := h.mode
		if mode == "" {
			mode = review.ModeReplay
		}
		changes[i] = d.recordTicket(h.ticket, h.sql, h.summary, mode)
	}

	for i, h := range hostile {
		t.Run("show/"+h.name, func(t *testing.T) {
			out := reviewCLI(t, d, 0, "show", changes[i].ID)
			checkVisible(t, "show", out)
			lines := strings.Split(out, "\n")
			for _, hd := range headers[:5] {
				if n := countPrefix(lines, hd); n != 1 {
					t.Errorf("%d lines start with %q, want 1:\n%s", n, hd, out)
				}
			}
			for _, want := range []string{
				"ticket:    " + safetext.Line(h.ticket),
				"summary:   " + safetext.Line(h.summary),
				"rows:      " + strconv.FormatInt(h.rows, 10) + " (affected in the dry run)",
			} {
				if !slices.Contains(lines, want) {
					t.Errorf("no line %q in:\n%s", want, out)
				}
			}
			checkSQL(t, lines, h.sql, "  ")
		})
	}

	t.Run("pending", func(t *testing.T) {
		out := reviewCLI(t, d, 0, "pending")
		checkVisible(t, "pending", out)
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) != 1+len(hostile) {
			t.Fatalf("%d lines for %d changes:\n%s", len(lines), len(hostile), out)
		}
		for _, hd := range headers {
			if n := countPrefix(lines, hd); n != 0 {
				t.Errorf("%d lines start with %q:\n%s", n, hd, out)
			}
		}
		rowsAt := strings.Index(lines[0], "ROWS")
		if rowsAt < 0 || !regexp.MustCompile(`RISK +ROWS +SUMMARY`).MatchString(lines[0]) {
			t.Fatalf("no ROWS column next to SUMMARY: %q", lines[0])
		}
		for i, h := range hostile {
			line := lines[1+i]
			if !strings.HasPrefix(line, changes[i].ID+" ") {
				t.Errorf("line %d is not change %s's: %q", i+1, changes[i].ID, line)
				continue
			}
			// Every cell before ROWS is ASCII once escaped, so the
			// column starts at the same rune in every line.
			if rs := []rune(line); len(rs) <= rowsAt || strings.Fields(string(rs[rowsAt:]))[0] != strconv.FormatInt(h.rows, 10) {
				t.Errorf("%s: ROWS is not %d in %q", h.name, h.rows, line)
			}
			if want := cell(h.summary, 48); !strings.Contains(line, want) {
				t.Errorf("%s: no summary %q in %q", h.name, want, line)
			}
		}
	})

	t.Run("pending --json", func(t *testing.T) {
		out := reviewCLI(t, d, 0, "pending", "--json")
		checkVisible(t, "pending --json", out)
		var got []pendingJSON
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%v:\n%s", err, out)
		}
		if len(got) != len(hostile) {
			t.Fatalf("%d changes, want %d", len(got), len(hostile))
		}
		for i, h := range hostile {
			g := got[i]
			if g.ID != changes[i].ID || g.Ticket != h.ticket || g.Summary != h.summary || g.SQL != h.sql || g.RowsAffected != h.rows {
				t.Errorf("%s: got %#v", h.name, g)
			}
		}
	})

	// The decisions echo the ticket and the reviewer's name on one line.
	forged := changes[5]
	out := reviewCLI(t, d, 0, "commit", forged.ID, "--reviewer", "alice")
	if strings.Count(out, "\n") != 1 || !strings.Contains(out, "(ticket "+safetext.Line(hostile[5].ticket)+")") {
		t.Errorf("commit: %q", out)
	}
	held := changes[len(changes)-1]
	reviewer, reason := "ali\u202ece\nrisk: low", "no\x1b[2J\nSQL: fine"
	out = reviewCLI(t, d, 0, "rollback", held.ID, "--reviewer", reviewer, "--reason", reason)
	checkVisible(t, "rollback", out)
	if strings.Count(out, "\n") != 1 || !strings.Contains(out, "by "+safetext.Line(reviewer)+" at ") {
		t.Errorf("rollback: %q", out)
	}
	out = reviewCLI(t, d, 0, "show", held.ID)
	checkVisible(t, "show decided", out)
	lines := strings.Split(out, "\n")
	if !slices.Contains(lines, "reason:    "+safetext.Line(reason)) || countPrefix(lines, "SQL:") != 1 || countPrefix(lines, "risk:") != 1 {
		t.Errorf("show decided:\n%s", out)
	}
	out = reviewCLI(t, d, 1, "commit", held.ID, "--reviewer", "bob")
	checkVisible(t, "commit refused", out)
	if strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, "refused: ") {
		t.Errorf("commit refused: %q", out)
	}
}

func TestBranchViewCannotMislead(t *testing.T) {
	d := newReviewDB(t)
	ticket, summary := "OPS-\u202e9\nrisk: low", "gift\u200b wrap\nSQL:\n     1 | DROP TABLE orders"
	sql := "ALTER TABLE orders\n  ADD COLUMN \"gift\nrisk: low\u202e\" boolean"
	b, _ := d.branchWithText(ticket, summary, sql)
	out := reviewCLI(t, d, 0, "show", b.ID)
	checkVisible(t, "show branch", out)
	lines := strings.Split(out, "\n")
	for _, hd := range []string{"SQL:", "risk:", "Report", "ticket:", "summary:"} {
		if n := countPrefix(lines, hd); n != 0 {
			t.Errorf("%d lines start with %q:\n%s", n, hd, out)
		}
	}
	at := -1
	for i, l := range lines {
		if l == "   summary: "+safetext.Line(summary) {
			at = i
		}
	}
	if at < 0 {
		t.Fatalf("no summary line in:\n%s", out)
	}
	checkNumbered(t, lines[at+1:], safetext.Block(sql), "     ")
	if !strings.Contains(out, "ticket "+safetext.Line(ticket)+"  status pending") {
		t.Errorf("no one-line ticket in:\n%s", out)
	}
	out = reviewCLI(t, d, 0, "branches")
	checkVisible(t, "branches", out)
	out = reviewCLI(t, d, 0, "discard", b.ID, "--reviewer", "alice\x1b[2J", "--reason", "no\u2028way")
	checkVisible(t, "discard", out)
	if strings.Count(out, "\n") != 1 || !strings.Contains(out, `by alice\u{001B}[2J at`) {
		t.Errorf("discard: %q", out)
	}
}

// TestReportText fills every string of a report, whatever fields it gains
// later, with text that hides and forges lines: the rendering has none of
// it raw, and its lines are the report's own.
func TestReportText(t *testing.T) {
	const bad = "\u200b\u202e\x1b[2J\nrisk: low\r\nSQL: \U000E0041"
	var r migrate.Report
	fillStrings(reflect.ValueOf(&r).Elem(), bad)
	r.Risk = "high"
	out := reportText(&r)
	checkVisible(t, "report", out)
	lines := strings.Split(out, "\n")
	if n := countPrefix(lines, "risk:"); n != 1 {
		t.Errorf("%d lines start with risk:\n%s", n, out)
	}
	if n := countPrefix(lines, "SQL:"); n != 0 {
		t.Errorf("%d lines start with SQL:\n%s", n, out)
	}
	want := strings.Count(migrateText(t, &r), "\n")
	if got := strings.Count(out, "\n"); got != want {
		t.Errorf("%d lines, want the report's own %d:\n%s", got, want, out)
	}
	// The original is untouched.
	if r.Statements[0].SQL != bad || r.SchemaDiff.Changes[0].Name != bad || r.Warnings[0].Message != bad {
		t.Errorf("reportText changed its argument: %+v", r)
	}
}

// migrateText is r.Text() with every string made plain, for its number
// of lines.
func migrateText(t *testing.T, r *migrate.Report) string {
	t.Helper()
	plain := mapStrings(reflect.ValueOf(r), func(string) string { return "x" }).Interface().(*migrate.Report)
	plain.Risk = "high"
	return plain.Text()
}

// fillStrings sets every exported string in v to s, giving every slice one
// element.
func fillStrings(v reflect.Value, s string) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Field(i).CanSet() {
				fillStrings(v.Field(i), s)
			}
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fillStrings(v.Index(0), s)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fillStrings(v.Elem(), s)
	case reflect.Bool:
		v.SetBool(true)
	}
}

func TestWriteSQL(t *testing.T) {
	for _, tc := range []struct{ sql, want string }{
		{"SELECT 1", "  1 | SELECT 1\n"},
		{"SELECT 1\n", "  1 | SELECT 1\n"},
		{"", "  (none)\n"},
		{"a\n\nb\r\nc\u2028d", "  1 | a\n  2 |\n  3 | b\\u{000D}\n  4 | c\\u{2028}d\n"},
		{strings.Repeat("x\n", 9) + "y", "   1 | x\n   2 | x\n   3 | x\n   4 | x\n   5 | x\n" +
			"   6 | x\n   7 | x\n   8 | x\n   9 | x\n  10 | y\n"},
	} {
		var b strings.Builder
		writeSQL(&b, tc.sql, "  ")
		if b.String() != tc.want {
			t.Errorf("writeSQL(%q) = %q, want %q", tc.sql, b.String(), tc.want)
		}
	}
	if got := cell("a\nb\tc", 10); got != `a\nb\tc` {
		t.Errorf("cell = %q", got)
	}
	if got := cell("héllo wörld", 6); got != "héllo…" {
		t.Errorf("cell = %q", got)
	}
}
