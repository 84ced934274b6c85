package safetext

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// escaped is how Line and Block show r.
func escaped(r rune) string { return fmt.Sprintf(`\u{%04X}`, r) }

// span lists the runes from lo to hi.
func span(lo, hi rune) []rune {
	var rs []rune
	for r := lo; r <= hi; r++ {
		rs = append(rs, r)
	}
	return rs
}

// hiddenClasses are the runes that must never reach a reviewer raw, by
// class; each is checked one by one.
var hiddenClasses = []struct {
	name  string
	runes []rune
}{
	{"C0 controls", append(span(0x00, 0x08), span(0x0B, 0x0C)...)},
	{"C0 controls after CR", span(0x0E, 0x1F)},
	{"DEL", []rune{0x7F}},
	{"C1 controls incl. NEL and CSI", span(0x80, 0x9F)},
	{"zero-width and directional marks", span(0x200B, 0x200F)},
	{"bidi embeddings and overrides", span(0x202A, 0x202E)},
	{"word joiner and invisible operators", span(0x2060, 0x2064)},
	{"bidi isolates", span(0x2066, 0x2069)},
	{"deprecated format characters", span(0x206A, 0x206F)},
	{"BOM, soft hyphen, Arabic letter mark, Mongolian vowel separator", []rune{0xFEFF, 0x00AD, 0x061C, 0x180E}},
	{"interlinear annotation", span(0xFFF9, 0xFFFB)},
	{"private use", []rune{0xE000, 0xF8FF, 0xF0000, 0xFFFFD, 0x100000, 0x10FFFD}},
	{"line and paragraph separators", []rune{0x2028, 0x2029}},
	{"space separators other than U+0020", append([]rune{0x00A0, 0x1680, 0x202F, 0x205F, 0x3000}, span(0x2000, 0x200A)...)},
	{"tag characters", span(0xE0000, 0xE007F)},
	{"variation selectors", append(span(0xFE00, 0xFE0F), span(0xE0100, 0xE01EF)...)},
	{"Mongolian free variation selectors", []rune{0x180B, 0x180C, 0x180D, 0x180F}},
	{"noncharacters", append(span(0xFDD0, 0xFDEF), 0xFFFE, 0xFFFF, 0x1FFFE, 0x10FFFF)},
	{"combining grapheme joiner and Hangul fillers", []rune{0x034F, 0x115F, 0x1160, 0x3164, 0xFFA0}},
	{"Khmer inherent vowels", []rune{0x17B4, 0x17B5}},
	{"braille pattern blank", []rune{0x2800}},
	{"unassigned", []rune{0x0378, 0x0380, 0x2FFFF, 0xEFFFF}},
}

func TestLineHiddenClasses(t *testing.T) {
	for _, c := range hiddenClasses {
		t.Run(c.name, func(t *testing.T) {
			for _, r := range c.runes {
				if !Hidden(r) {
					t.Errorf("Hidden(%U) = false", r)
				}
				in := "a" + string(r) + "b"
				want := "a" + escaped(r) + "b"
				if got := Line(in); got != want {
					t.Errorf("Line(%+q) = %q, want %q", in, got, want)
				}
				lines := Block(in)
				if len(lines) != 1 || lines[0] != want {
					t.Errorf("Block(%+q) = %q, want [%q]", in, lines, want)
				}
			}
		})
	}
}

func TestLine(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", ""},
		{"ascii", "Mark paid orders shipped (OPS-7): 50% <done> & 'quoted'", "Mark paid orders shipped (OPS-7): 50% <done> & 'quoted'"},
		{"newline", "fix\nSQL: DROP TABLE orders", `fix\nSQL: DROP TABLE orders`},
		{"forged report line", "ok\r\nrisk: low", `ok\r\nrisk: low`},
		{"tab", "a\tb", `a\tb`},
		{"forged line number", "ok\n  2 | DROP TABLE x", `ok\n  2 | DROP TABLE x`},
		{"ANSI colour", "\x1b[31mred\x1b[0m", `\u{001B}[31mred\u{001B}[0m`},
		{"ANSI clear screen", "\x1b[2J\x1b[H", `\u{001B}[2J\u{001B}[H`},
		{"C1 CSI", "\u009b31m", `\u{009B}31m`},
		{"OSC title", "\x1b]0;pwned\x07", `\u{001B}]0;pwned\u{0007}`},
		{"RLO", "rtl \u202eevil", `rtl \u{202E}evil`},
		{"zero-width space", "DROP\u200BTABLE", `DROP\u{200B}TABLE`},
		{"tag characters spell hidden text", "ok\U000E0049\U000E0047\U000E004E", `ok\u{E0049}\u{E0047}\u{E004E}`},
		{"variation selector smuggling", "a\uFE00\U000E0100\U000E01EF", `a\u{FE00}\u{E0100}\u{E01EF}`},
		{"invalid byte", "bad \xff byte", `bad \x{FF} byte`},
		{"truncated sequence", "\xe6\x97", `\x{E6}\x{97}`},
		{"encoded surrogate", "\xed\xa0\x80", `\x{ED}\x{A0}\x{80}`},
		{"real replacement character stays", "\uFFFD", "\uFFFD"},
		{"Latin", "café naïve Ærø", "café naïve Ærø"},
		{"CJK", "日本語のテキスト 한국어 中文", "日本語のテキスト 한국어 中文"},
		{"Cyrillic Greek", "Привет Ελληνικά", "Привет Ελληνικά"},
		{"Arabic Hebrew letters", "مرحبا שלום", "مرحبا שלום"},
		{"Devanagari Thai", "नमस्ते สวัสดี", "नमस्ते สวัสดี"},
		{"emoji", "🙂👍🚀🇫🇷", "🙂👍🚀🇫🇷"},
		{"emoji ZWJ sequence shows its joiner", "👨\u200d👩", `👨\u{200D}👩`},
		{"keycap keeps its enclosing mark", "1\uFE0F\u20E3", `1\u{FE0F}` + "\u20E3"},
		{"decomposed accents", "e\u0301\u0323", "e\u0301\u0323"},
		{"four marks stay", "a\u0300\u0301\u0302\u0303", "a\u0300\u0301\u0302\u0303"},
		{"Zalgo run clipped", "a\u0300\u0301\u0302\u0303\u0304\u0305b\u0306", "a\u0300\u0301\u0302\u0303" + `\u{0304}\u{0305}` + "b\u0306"},
		{"backslash", `C:\path \d+ \\ \`, `C:\path \d+ \\ \`},
		{"typed escape", `\u{200B}`, `\u{005C}u{200B}`},
		{"typed byte escape", `\x{FF}`, `\u{005C}x{FF}`},
		{"typed short escapes", `\n \r \t \u200b \U000E0041 \x1b`, `\u{005C}n \u{005C}r \u{005C}t \u{005C}u200b \u{005C}U000E0041 \u{005C}x1b`},
		{"backslash before newline", "\\\n", `\u{005C}\n`},
		{"backslashes before a hidden rune", "\\\\\u200b", `\u{005C}\u{005C}\u{200B}`},
		{"backslash before an invalid byte", "\\\xff", `\u{005C}\x{FF}`},
		{"backslash run before n", `\\n`, `\u{005C}\u{005C}n`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Line(tc.in)
			if got != tc.want {
				t.Errorf("Line(%+q) = %q, want %q", tc.in, got, tc.want)
			}
			if back := decode(t, got, oneLine); back != tc.in {
				t.Errorf("decode(%q) = %+q, want %+q", got, back, tc.in)
			}
		})
	}
}

func TestLineMax(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"héllo wörld", 6, "héllo…"},
		{"a\nb", 4, `a\nb`},
		{"abc\u200bdef", 8, "abc…"}, // the escape is not cut
		{"abc\u200bdef", 12, `abc\u{200B}…`},
		{"abcdef", 1, "…"},
	} {
		if got := LineMax(tc.in, tc.n); got != tc.want {
			t.Errorf("LineMax(%+q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
		if got := LineMax(tc.in, tc.n); utf8.RuneCountInString(got) > tc.n {
			t.Errorf("LineMax(%+q, %d) = %q: longer than %d", tc.in, tc.n, got, tc.n)
		}
	}
}

func TestBlock(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want []string
	}{
		{"empty", "", nil},
		{"lines", "UPDATE orders\n   SET status = 'shipped'\n WHERE id = 1", []string{"UPDATE orders", "   SET status = 'shipped'", " WHERE id = 1"}},
		{"trailing newline", "SELECT 1\n", []string{"SELECT 1", ""}},
		{"tabs stay", "\tSET a = 1", []string{"\tSET a = 1"}},
		{"CRLF", "a\r\nb", []string{`a\u{000D}`, "b"}},
		{"lone CR", "a\rrisk: low", []string{`a\u{000D}risk: low`}},
		{"vertical tab and form feed", "a\vb\fc", []string{`a\u{000B}b\u{000C}c`}},
		{"NEL", "a\u0085SQL:", []string{`a\u{0085}SQL:`}},
		{"line and paragraph separators", "a\u2028b\u2029c", []string{`a\u{2028}b\u{2029}c`}},
		{"SQL escapes stay as typed", `E'a\nb\t' ~ '\d+' U&'\0041' E'\u0041'`, []string{`E'a\nb\t' ~ '\d+' U&'\0041' E'\u0041'`}},
		{"typed escape", `'\u{202E}'`, []string{`'\u{005C}u{202E}'`}},
		{"backslash before tab", "\\\t", []string{"\\\t"}},
		{"backslash at the end of a line", "a\\\nb", []string{`a\`, "b"}},
		{"ANSI", "SELECT '\x1b[8m'", []string{`SELECT '\u{001B}[8m'`}},
		{"forged numbered line", "SELECT 1;\n  2 | DROP TABLE x", []string{"SELECT 1;", "  2 | DROP TABLE x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Block(tc.in)
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tc.want) {
				t.Errorf("Block(%+q) = %q, want %q", tc.in, got, tc.want)
			}
			if back := decode(t, strings.Join(got, "\n"), multiLine); back != tc.in {
				t.Errorf("decode = %+q, want %+q", back, tc.in)
			}
		})
	}
}

func TestJSON(t *testing.T) {
	type rec struct {
		Summary string            `json:"summary"`
		List    []string          `json:"list"`
		Map     map[string]string `json:"map"`
	}
	var all []string
	for _, c := range hiddenClasses {
		var b strings.Builder
		for _, r := range c.runes {
			b.WriteRune(r)
		}
		all = append(all, b.String())
	}
	all = append(all,
		"ok\nSQL: DROP TABLE orders\nrisk: low",
		"\x1b[31m\u009b\u202e\u200b",
		`a < b && c > "d" \ e`,
		"日本 🙂 café",
		"a\u0300\u0301\u0302\u0303\u0304\u0305\u0306",
	)
	for _, s := range all {
		for _, indent := range []string{"", "  "} {
			v := rec{Summary: s, List: []string{s, "plain"}, Map: map[string]string{s: s}}
			b, err := JSON(v, indent)
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(b) {
				t.Fatalf("invalid JSON: %s", b)
			}
			var back rec
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if back.Summary != s || back.List[0] != s || back.Map[s] != s {
				t.Errorf("round trip of %+q: got %+q", s, back)
			}
			checkJSONRaw(t, b)
		}
	}
	b, err := JSON("tag \U000E0041 zw \u200b del \x7f amp &", "")
	if err != nil {
		t.Fatal(err)
	}
	if want := `"tag \udb40\udc41 zw \u200b del \u007f amp &"`; string(b) != want {
		t.Errorf("JSON = %s, want %s", b, want)
	}
	b, err = JSON("bad \xff", "")
	if err != nil {
		t.Fatal(err)
	}
	if want := `"bad \ufffd"`; string(b) != want {
		t.Errorf("JSON = %s, want %s", b, want)
	}
	if _, err := JSON(func() {}, ""); err == nil {
		t.Error("JSON of a func: no error")
	}
}

// checkJSONRaw fails when the encoded JSON b has a Hidden rune raw (but
// the newlines of its indentation), or more than maxMarks marks in a row.
func checkJSONRaw(t *testing.T, b []byte) {
	t.Helper()
	if !utf8.Valid(b) {
		t.Errorf("not UTF-8: %q", b)
	}
	marks := 0
	for _, r := range string(b) {
		if r != '\n' && Hidden(r) {
			t.Errorf("raw %U in %s", r, b)
		}
		if isMark(r) {
			marks++
			if marks > maxMarks {
				t.Errorf("%d marks in a row in %s", marks, b)
			}
		} else {
			marks = 0
		}
	}
}

// checkRendered fails when a rendered line has a newline, a Hidden rune
// (tabs allowed with tabs), invalid UTF-8 or too many marks in a row.
func checkRendered(t *testing.T, line string, tabs bool) {
	t.Helper()
	if !utf8.ValidString(line) {
		t.Errorf("not UTF-8: %q", line)
	}
	marks := 0
	for _, r := range line {
		if Hidden(r) && !(tabs && r == '\t') {
			t.Errorf("raw %U in %q", r, line)
		}
		if isMark(r) {
			marks++
			if marks > maxMarks {
				t.Errorf("%d marks in a row in %q", marks, line)
			}
		} else {
			marks = 0
		}
	}
}

// decode reverses the notation: it is the reviewer reading the screen.
func decode(t *testing.T, s string, m mode) string {
	t.Helper()
	var b []byte
	for i := 0; i < len(s); {
		rest := s[i:]
		switch {
		case strings.HasPrefix(rest, `\u{`), strings.HasPrefix(rest, `\x{`):
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				t.Fatalf("unterminated escape in %q", s)
			}
			n, err := strconv.ParseUint(rest[3:end], 16, 32)
			if err != nil {
				t.Fatalf("bad escape %q in %q", rest[:end+1], s)
			}
			if rest[1] == 'x' {
				b = append(b, byte(n))
			} else {
				b = utf8.AppendRune(b, rune(n))
			}
			i += end + 1
		case m == oneLine && strings.HasPrefix(rest, `\n`):
			b, i = append(b, '\n'), i+2
		case m == oneLine && strings.HasPrefix(rest, `\r`):
			b, i = append(b, '\r'), i+2
		case m == oneLine && strings.HasPrefix(rest, `\t`):
			b, i = append(b, '\t'), i+2
		default:
			b, i = append(b, s[i]), i+1
		}
	}
	return string(b)
}

var seeds = []string{
	"", "plain", "a\nb\r\nc\td", "\x1b[31m", "\u009b", "\u202e\u2066", "\u200b\u2060\ufeff", "\U000E0041\U000E007F",
	"\ufe0f\U000E0100", "\xff\xfe", `\u{200B}`, `\\n\n`, "\\\u200b", "e\u0301\u0301\u0301\u0301\u0301\u0301", "日本🙂",
	"\u2028\u2029\u0085\v\f", "\ue000\U000F0000", "\u3164\u115f\u2800",
}

func FuzzLine(f *testing.F) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := Line(s)
		if strings.ContainsAny(out, "\n\r\t") {
			t.Errorf("Line(%+q) = %q: more than one line", s, out)
		}
		checkRendered(t, out, false)
		if back := decode(t, out, oneLine); back != s {
			t.Errorf("Line(%+q) = %q reads as %+q", s, out, back)
		}
		clipped := LineMax(s, 20)
		checkRendered(t, clipped, false)
		if utf8.RuneCountInString(clipped) > 20 || !strings.HasPrefix(out, strings.TrimSuffix(clipped, "…")) {
			t.Errorf("LineMax(%+q, 20) = %q (Line %q)", s, clipped, out)
		}
	})
}

func FuzzBlock(f *testing.F) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lines := Block(s)
		for _, l := range lines {
			if strings.ContainsAny(l, "\n\r") {
				t.Errorf("Block(%+q): line %q breaks", s, l)
			}
			checkRendered(t, l, true)
		}
		if want := strings.Count(s, "\n") + 1; s != "" && len(lines) != want {
			t.Errorf("Block(%+q): %d lines, want %d", s, len(lines), want)
		}
		if back := decode(t, strings.Join(lines, "\n"), multiLine); back != s {
			t.Errorf("Block(%+q) = %q reads as %+q", s, lines, back)
		}
	})
}

func FuzzJSON(f *testing.F) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := JSON(map[string]any{"s": s, "l": []string{s}}, "  ")
		if err != nil {
			t.Fatal(err)
		}
		var back struct {
			S string   `json:"s"`
			L []string `json:"l"`
		}
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%v: %s", err, b)
		}
		// encoding/json replaces each bad byte with U+FFFD.
		want := []rune{}
		for i := 0; i < len(s); {
			r, n := utf8.DecodeRuneInString(s[i:])
			want = append(want, r)
			i += n
		}
		if back.S != string(want) || back.L[0] != string(want) {
			t.Errorf("JSON of %+q decodes to %+q, want %+q", s, back, string(want))
		}
		checkJSONRaw(t, b)
	})
}
