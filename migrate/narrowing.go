package migrate

// Type oids of the built-in types whose narrowing Run recognises.
const (
	oidInt2        = 21
	oidInt4        = 23
	oidInt8        = 20
	oidText        = 25
	oidFloat4      = 700
	oidFloat8      = 701
	oidBpchar      = 1042
	oidVarchar     = 1043
	oidTime        = 1083
	oidTimestamp   = 1114
	oidTimestamptz = 1184
	oidTimetz      = 1266
	oidNumeric     = 1700
)

// integerDigits is how many decimal digits each integer type can need.
var integerDigits = map[uint32]int{oidInt2: 5, oidInt4: 10, oidInt8: 19}

// narrows reports whether changing a column from one type (oid and
// atttypmod) to another can reject or alter values the old type held:
// bigint→integer, text→varchar(n), varchar(n)→varchar(m<n), a numeric
// losing precision or scale, float8→float4, numeric or float→integer, a
// timestamp losing fractional digits. Conversions between unrelated types
// are not judged.
func narrows(fromOID uint32, fromMod int32, toOID uint32, toMod int32) bool {
	if fromOID == toOID && fromMod == toMod {
		return false
	}
	switch {
	case isInteger(toOID):
		switch {
		case isInteger(fromOID):
			return integerDigits[toOID] < integerDigits[fromOID]
		case fromOID == oidNumeric, fromOID == oidFloat4, fromOID == oidFloat8:
			return true
		}
	case toOID == oidNumeric:
		p, s, limited := numericMod(toMod)
		switch {
		case !limited:
			return false
		case isInteger(fromOID):
			return p-s < integerDigits[fromOID]
		case fromOID == oidFloat4, fromOID == oidFloat8:
			return true
		case fromOID == oidNumeric:
			fp, fs, fromLimited := numericMod(fromMod)
			return !fromLimited || s < fs || p-s < fp-fs
		}
	case toOID == oidFloat4:
		return fromOID == oidFloat8 || fromOID == oidNumeric || fromOID == oidInt4 || fromOID == oidInt8
	case isCharacter(toOID):
		if !isCharacter(fromOID) {
			return false
		}
		to, toLimited := charLength(toOID, toMod)
		from, fromLimited := charLength(fromOID, fromMod)
		return toLimited && (!fromLimited || to < from)
	case timeFamily(toOID) != 0:
		return timeFamily(fromOID) == timeFamily(toOID) && timePrecision(toMod) < timePrecision(fromMod)
	}
	return false
}

func isInteger(oid uint32) bool { _, ok := integerDigits[oid]; return ok }

func isCharacter(oid uint32) bool {
	return oid == oidText || oid == oidVarchar || oid == oidBpchar
}

// timeFamily groups the types whose typmod is a count of fractional
// digits: 1 for the timestamps, 2 for the times, 0 for the rest.
func timeFamily(oid uint32) int {
	switch oid {
	case oidTimestamp, oidTimestamptz:
		return 1
	case oidTime, oidTimetz:
		return 2
	}
	return 0
}

// numericMod decodes numeric's atttypmod: ((precision << 16) | scale) + 4,
// or -1 for an unconstrained numeric.
func numericMod(mod int32) (precision, scale int, limited bool) {
	if mod < 4 {
		return 0, 0, false
	}
	m := mod - 4
	return int(m>>16) & 0xffff, int(int16(m & 0xffff)), true
}

// charLength decodes a character type's length limit: atttypmod is the
// length plus 4, or -1 for none. text has none.
func charLength(oid uint32, mod int32) (int, bool) {
	if oid == oidText || mod < 4 {
		return 0, false
	}
	return int(mod - 4), true
}

// timePrecision decodes the fractional digits of a time type; -1 means
// the default, 6.
func timePrecision(mod int32) int {
	if mod < 0 {
		return 6
	}
	return int(mod)
}
