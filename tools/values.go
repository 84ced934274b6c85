package tools

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// Type OIDs whose text form is turned into a JSON-native value. Every other
// type comes back as its PostgreSQL text form.
const (
	oidBool        = 16
	oidBytea       = 17
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidOID         = 26
	oidJSON        = 114
	oidFloat4      = 700
	oidFloat8      = 701
	oidTimestamp   = 1114
	oidTimestamptz = 1184
	oidNumeric     = 1700
	oidJSONB       = 3802
)

// maxExactInt is 2^53: integers beyond it lose precision in JavaScript and
// other float64 JSON consumers, so they are returned as strings.
const maxExactInt = 1 << 53

// appendCell appends the JSON encoding of one text-format value to dst.
// limit caps the encoded size of the value; cut reports whether it did.
//
// raw is pgx's read buffer, valid only until the next row is read: every
// byte of it that the answer keeps is copied into dst here, and nothing
// else holds on to it (see docs/architecture.md, "Values").
func appendCell(dst []byte, oid uint32, raw []byte, limit int) (out []byte, cut bool) {
	if raw == nil {
		return append(dst, "null"...), false
	}
	switch oid {
	case oidBool:
		if len(raw) == 1 && raw[0] == 't' {
			return append(dst, "true"...), false
		}
		return append(dst, "false"...), false
	case oidInt2, oidInt4, oidOID:
		if jsonNumber(raw) {
			return append(dst, raw...), false
		}
	case oidInt8:
		if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil && n <= maxExactInt && n >= -maxExactInt {
			return append(dst, raw...), false
		}
		return appendJSONString(dst, raw), false
	case oidFloat4, oidFloat8:
		// Infinity and NaN have no JSON number; they stay strings.
		if jsonNumber(raw) {
			return append(dst, raw...), false
		}
		return appendJSONString(dst, raw), false
	case oidNumeric:
		if numericIsExact(raw) && jsonNumber(raw) {
			return append(dst, raw...), false
		}
		return appendJSONString(dst, raw), false
	case oidJSON, oidJSONB:
		if len(raw) <= limit && utf8.Valid(raw) && json.Valid(raw) {
			if out, ok := appendJSONValue(dst, raw); ok {
				return out, false
			}
			// A number beyond float64's range would make the whole answer
			// unreadable to clients that decode numbers as float64 (the
			// mcp-go client, JavaScript): the value goes as its text.
			return appendJSONString(dst, raw), false
		}
	case oidBytea:
		// Text output of bytea is \x followed by hex (bytea_output=hex is
		// set for the transaction).
		if len(raw) >= 2 && raw[0] == '\\' && raw[1] == 'x' {
			b := make([]byte, hex.DecodedLen(len(raw)-2))
			if _, err := hex.Decode(b, raw[2:]); err == nil {
				enc := base64.StdEncoding.EncodeToString(b)
				if len(enc) > limit {
					// Cut on a 4-byte boundary so the prefix stays decodable.
					return appendJSONString(dst, []byte(enc[:limit/4*4])), true
				}
				return appendJSONString(dst, []byte(enc)), false
			}
		}
	case oidTimestamptz:
		s := string(raw)
		if t, err := time.Parse("2006-01-02 15:04:05.999999999Z07:00", s); err == nil {
			return appendJSONString(dst, t.AppendFormat(nil, time.RFC3339Nano)), false
		}
		if t, err := time.Parse("2006-01-02 15:04:05.999999999Z07", s); err == nil {
			return appendJSONString(dst, t.AppendFormat(nil, time.RFC3339Nano)), false
		}
		return appendJSONString(dst, raw), false // infinity and friends
	case oidTimestamp:
		if bytes.HasSuffix(raw, []byte(" BC")) {
			// ISO 8601 has no era suffix: PostgreSQL's text, as
			// timestamptz gives for the years RFC 3339 cannot write.
			return appendJSONString(dst, raw), false
		}
		start := len(dst)
		dst = appendJSONString(dst, raw)
		for i := start; i < len(dst); i++ {
			if dst[i] == ' ' {
				dst[i] = 'T'
				break
			}
		}
		return dst, false
	}
	s, cut := truncateBytes(raw, limit)
	return appendJSONString(dst, s), cut
}

// appendJSONValue appends a valid JSON document (json or jsonb output) to
// dst in one pass: whitespace between tokens dropped (json keeps its
// input's, newlines included, and a row must stay one line of the text
// rendering), U+2028 and U+2029 escaped inside strings as every other
// string airlock writes is, and every token otherwise as PostgreSQL wrote
// it. ok is false, and dst unchanged, when a number does not fit a float64.
func appendJSONValue(dst, raw []byte) (out []byte, ok bool) {
	start := len(dst)
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '"':
			j := i + 1
			for j < len(raw) && raw[j] != '"' {
				if raw[j] == '\\' {
					j++
				}
				j++
			}
			str := raw[i : j+1]
			for k := 0; k < len(str); k++ {
				if str[k] == 0xE2 && k+2 < len(str) && str[k+1] == 0x80 && (str[k+2] == 0xA8 || str[k+2] == 0xA9) {
					dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[str[k+2]-0xA0])
					k += 2
					continue
				}
				dst = append(dst, str[k])
			}
			i = j + 1
		case c == '-' || (c >= '0' && c <= '9'):
			j := i + 1
			for j < len(raw) && (raw[j] == '.' || raw[j] == 'e' || raw[j] == 'E' || raw[j] == '+' || raw[j] == '-' || (raw[j] >= '0' && raw[j] <= '9')) {
				j++
			}
			if _, err := strconv.ParseFloat(string(raw[i:j]), 64); err != nil {
				return dst[:start], false
			}
			dst = append(dst, raw[i:j]...)
			i = j
		default:
			dst = append(dst, c)
			i++
		}
	}
	return dst, true
}

// jsonNumber reports whether b is a number in JSON's grammar. PostgreSQL's
// numeric output forms are, but the check keeps a surprise (a locale, a
// future format) from ever producing invalid JSON.
func jsonNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i == len(b) || b[i] < '0' || b[i] > '9' {
			return false
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i == len(b) || b[i] < '0' || b[i] > '9' {
			return false
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	return i == len(b)
}

// numericIsExact reports whether a numeric's text can be read as a JSON
// number by a float64 consumer without losing digits: at most 15
// significant digits and a plain decimal form.
func numericIsExact(s []byte) bool {
	digits := 0
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9':
			if digits > 0 || r != '0' {
				digits++
			}
		case r == '.':
		case r == '-' && i == 0:
		default:
			return false // NaN, Infinity
		}
	}
	return digits <= 15
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string, as encoding/json writes it
// without HTML escaping: control characters escaped, invalid UTF-8
// replaced by U+FFFD, and U+2028/U+2029 escaped so that the text stays
// safe to embed in JavaScript.
func appendJSONString(dst, s []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// truncateBytes cuts s to at most limit bytes on a rune boundary.
func truncateBytes(s []byte, limit int) ([]byte, bool) {
	if len(s) <= limit {
		return s, false
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut], true
}

// truncateString cuts s to at most limit bytes on a rune boundary.
func truncateString(s string, limit int) (string, bool) {
	if len(s) <= limit {
		return s, false
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut], true
}
