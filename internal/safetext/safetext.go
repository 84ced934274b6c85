package safetext

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// maxMarks is how many combining marks in a row are shown as they are;
// the rest of the run is escaped. Real text stacks at most three or four
// (Vietnamese, Hebrew points with a cantillation mark); a long run ("Zalgo"
// text) is drawn over the lines above and below.
const maxMarks = 4

// Hidden reports whether r is never shown raw, wherever it stands:
//
//   - control characters (Cc): C0, DEL, C1 (U+009B is a one-byte CSI,
//     U+0085 a line break);
//   - format characters (Cf): zero-width space, joiners and marks
//     (U+200B–U+200F), bidi embeddings, overrides and isolates, word
//     joiner and invisible operators (U+2060–U+2064), BOM, soft hyphen,
//     U+061C, the tag characters, and others;
//   - private use (Co), surrogates (Cs) and, as of unicode.Version,
//     unassigned code points (Cn): fonts draw them as anything or nothing;
//   - line and paragraph separators (Zl, Zp), and every space separator
//     (Zs) but U+0020: each looks like a space and is not one;
//   - bidi controls, variation selectors (U+FE00–U+FE0F, U+E0100–U+E01EF,
//     the Mongolian ones), the whole tag block U+E0000–U+E007F,
//     noncharacters (U+FDD0–U+FDEF, U+xFFFE, U+xFFFF);
//   - the other default-ignorable code points, which fonts draw as nothing:
//     the combining grapheme joiner U+034F, the Hangul fillers U+115F,
//     U+1160, U+3164 and U+FFA0, U+17B4, U+17B5 and more;
//   - U+2800 BRAILLE PATTERN BLANK, an empty glyph used as a visible blank.
//
// Letters, digits, punctuation, symbols and emoji of every script stay as
// they are, and so do combining marks, up to four in a row.
func Hidden(r rune) bool {
	switch {
	case r < 0x20 || r == 0x7f:
		return true
	case r < 0x7f:
		return false
	case r >= 0xE0000 && r <= 0xE007F, r == 0x2800:
		return true
	}
	// unicode.C is Cc, Cf, Cn, Co and Cs.
	return unicode.In(r, unicode.C, unicode.Zl, unicode.Zp, unicode.Zs,
		unicode.Bidi_Control, unicode.Variation_Selector, unicode.Noncharacter_Code_Point,
		unicode.Other_Default_Ignorable_Code_Point)
}

// isMark reports whether r is drawn on top of the character before it.
func isMark(r rune) bool { return unicode.In(r, unicode.Mn, unicode.Me) }

// Line renders s on one line: every Hidden rune, newline, carriage return
// and tab, every byte of invalid UTF-8 and combining marks past the fourth
// in a row are escapes (see the package's Notation). Use it for summaries,
// tickets, names, reasons and error messages.
func Line(s string) string {
	var b strings.Builder
	render(s, oneLine, func(piece string, _ bool) { b.WriteString(piece) })
	return b.String()
}

// LineMax is Line clipped to at most n runes, for a table cell: when the
// rendering is longer it ends in "…" and never in the middle of an escape.
func LineMax(s string, n int) string {
	var pieces []string
	total := 0
	render(s, oneLine, func(piece string, _ bool) {
		pieces = append(pieces, piece)
		total += utf8.RuneCountInString(piece)
	})
	if total <= n {
		return strings.Join(pieces, "")
	}
	var b strings.Builder
	used := 0
	for _, p := range pieces {
		w := utf8.RuneCountInString(p)
		if used+w > n-1 {
			break
		}
		b.WriteString(p)
		used += w
	}
	if n > 0 {
		b.WriteString("…")
	}
	return b.String()
}

// Block renders multi-line text such as SQL as lines, for the caller to
// print each with a prefix of its own (a line number). Only "\n" breaks a
// line; the last element is "" when s ends in a newline, so that no line
// goes missing. Each line is escaped like Line, except that tabs stay and
// "\n", "\r", "\t" typed as two characters are not escapes.
func Block(s string) []string {
	if s == "" {
		return nil
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		var b strings.Builder
		render(l, multiLine, func(piece string, _ bool) { b.WriteString(piece) })
		lines[i] = b.String()
	}
	return lines
}

type mode uint8

const (
	oneLine mode = iota
	multiLine
)

var short = map[rune]string{'\n': `\n`, '\r': `\r`, '\t': `\t`}

// render calls emit with each piece of s's rendering in order: either one
// rune as it is or one escape.
func render(s string, m mode, emit func(piece string, escape bool)) {
	marks := 0
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			emit(fmt.Sprintf(`\x{%02X}`, s[i]), true)
			marks = 0
		case r == '\\':
			// A run of backslashes is escaped as a whole or not at all:
			// each one is followed either by another (escaped) backslash
			// or by what decides.
			j := i
			for j < len(s) && s[j] == '\\' {
				j++
			}
			esc := startsEscape(s[j:], m)
			for ; i < j; i++ {
				if esc {
					emit(`\u{005C}`, true)
				} else {
					emit(`\`, false)
				}
			}
			marks = 0
			continue
		case m == oneLine && short[r] != "":
			emit(short[r], true)
			marks = 0
		case m == multiLine && r == '\t':
			emit("\t", false)
			marks = 0
		case Hidden(r):
			emit(codePoint(r), true)
			marks = 0
		case isMark(r):
			// The rest of a long run stays escaped, so that no base
			// character carries more than maxMarks.
			if marks >= maxMarks {
				emit(codePoint(r), true)
			} else {
				emit(s[i:i+n], false)
				marks++
			}
		default:
			emit(s[i:i+n], false)
			marks = 0
		}
		i += n
	}
}

// startsEscape reports whether rest, which follows a backslash the agent
// typed, would make that backslash read as the start of an escape.
func startsEscape(rest string, m mode) bool {
	if rest == "" {
		return false
	}
	if strings.HasPrefix(rest, "u{") || strings.HasPrefix(rest, "x{") {
		return true
	}
	r, n := utf8.DecodeRuneInString(rest)
	switch {
	case r == utf8.RuneError && n == 1:
		return true
	case m == oneLine && strings.ContainsRune("nrtuUx\n\r\t", r):
		return true
	case m == multiLine && r == '\t':
		return false
	}
	// A combining mark right after a backslash is the first of its run,
	// so only Hidden decides.
	return Hidden(r)
}

func codePoint(r rune) string { return fmt.Sprintf(`\u{%04X}`, r) }

// JSON encodes v as encoding/json does (HTML characters not escaped; with
// indent, indented), and then escapes inside every string each rune Line
// would escape (Hidden runes and combining marks past the fourth in a
// row) as \uXXXX. The output is valid JSON that decodes to exactly the
// strings of v, when they are valid UTF-8. It has no trailing newline.
func JSON(v any, indent string) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", indent)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode JSON: %w", err)
	}
	return escapeJSON(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))), nil
}

// escapeJSON rewrites the strings of the valid JSON b. Outside strings JSON
// has only ASCII punctuation, literals and whitespace, all left alone.
func escapeJSON(b []byte) []byte {
	out := make([]byte, 0, len(b)+len(b)/8)
	inString := false
	marks := 0
	for i := 0; i < len(b); {
		c := b[i]
		switch {
		case !inString:
			out = append(out, c)
			inString = c == '"'
			marks = 0
			i++
		case c == '"':
			out = append(out, c)
			inString = false
			i++
		case c == '\\':
			// encoding/json's own escape: \" \\ \/ \b \f \n \r \t or \uXXXX.
			n := 2
			if i+1 < len(b) && b[i+1] == 'u' {
				n = 6
			}
			n = min(n, len(b)-i)
			out = append(out, b[i:i+n]...)
			marks = 0
			i += n
		default:
			r, n := utf8.DecodeRune(b[i:])
			switch {
			case r == utf8.RuneError && n == 1, Hidden(r):
				out = appendJSONEscape(out, r)
				marks = 0
			case isMark(r) && marks >= maxMarks:
				out = appendJSONEscape(out, r)
			case isMark(r):
				out = append(out, b[i:i+n]...)
				marks++
			default:
				out = append(out, b[i:i+n]...)
				marks = 0
			}
			i += n
		}
	}
	return out
}

func appendJSONEscape(out []byte, r rune) []byte {
	if r > 0xFFFF {
		hi, lo := utf16.EncodeRune(r)
		return fmt.Appendf(out, `\u%04x\u%04x`, hi, lo)
	}
	return fmt.Appendf(out, `\u%04x`, r)
}
