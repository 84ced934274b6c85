package tools

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math"
	"strconv"
	"strings"
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

// cellValue converts one text-format value to its JSON representation.
// limit caps the encoded size of the cell; cut reports whether it did.
func cellValue(oid uint32, raw []byte, limit int) (v any, cut bool) {
	if raw == nil {
		return nil, false
	}
	s := string(raw)
	switch oid {
	case oidBool:
		return s == "t", false
	case oidInt2, oidInt4, oidOID:
		return json.Number(s), false
	case oidInt8:
		if n, err := strconv.ParseInt(s, 10, 64); err == nil && n <= maxExactInt && n >= -maxExactInt {
			return json.Number(s), false
		}
		return s, false
	case oidFloat4, oidFloat8:
		if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return json.Number(s), false
		}
		return s, false
	case oidNumeric:
		if numericIsExact(s) {
			return json.Number(s), false
		}
		return s, false
	case oidJSON, oidJSONB:
		if len(raw) <= limit && json.Valid(raw) {
			return json.RawMessage(raw), false
		}
		return truncateString(s, limit)
	case oidBytea:
		// Text output of bytea is \x followed by hex (bytea_output=hex is
		// set for the transaction).
		b, err := hex.DecodeString(strings.TrimPrefix(s, `\x`))
		if err != nil {
			return truncateString(s, limit)
		}
		enc := base64.StdEncoding.EncodeToString(b)
		if len(enc) > limit {
			// Cut on a 4-byte boundary so the prefix stays decodable.
			return enc[:limit/4*4], true
		}
		return enc, false
	case oidTimestamptz:
		if t, err := time.Parse("2006-01-02 15:04:05.999999999Z07:00", s); err == nil {
			return t.Format(time.RFC3339Nano), false
		}
		if t, err := time.Parse("2006-01-02 15:04:05.999999999Z07", s); err == nil {
			return t.Format(time.RFC3339Nano), false
		}
		return s, false // infinity and friends
	case oidTimestamp:
		return strings.Replace(s, " ", "T", 1), false
	}
	return truncateString(s, limit)
}

// numericIsExact reports whether a numeric's text can be read as a JSON
// number by a float64 consumer without losing digits: at most 15
// significant digits and a plain decimal form.
func numericIsExact(s string) bool {
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
