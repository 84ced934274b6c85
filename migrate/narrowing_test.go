package migrate

import "testing"

func TestNarrows(t *testing.T) {
	// atttypmod encodings: varchar(n) and char(n) are n+4; numeric(p,s) is
	// (p<<16 | s) + 4; time types carry their precision; -1 is none.
	varchar := func(n int32) int32 { return n + 4 }
	numeric := func(p, s int32) int32 { return p<<16 | s + 4 }
	tests := []struct {
		name           string
		from, to       uint32
		fromMod, toMod int32
		want           bool
	}{
		{"bigint to integer", oidInt8, oidInt4, -1, -1, true},
		{"integer to bigint", oidInt4, oidInt8, -1, -1, false},
		{"integer to smallint", oidInt4, oidInt2, -1, -1, true},
		{"numeric to integer", oidNumeric, oidInt4, -1, -1, true},
		{"float8 to float4", oidFloat8, oidFloat4, -1, -1, true},
		{"float4 to float8", oidFloat4, oidFloat8, -1, -1, false},
		{"text to varchar(n)", oidText, oidVarchar, -1, varchar(50), true},
		{"varchar(n) to text", oidVarchar, oidText, varchar(50), -1, false},
		{"varchar(50) to varchar(20)", oidVarchar, oidVarchar, varchar(50), varchar(20), true},
		{"varchar(20) to varchar(50)", oidVarchar, oidVarchar, varchar(20), varchar(50), false},
		{"varchar to varchar(10)", oidVarchar, oidVarchar, -1, varchar(10), true},
		{"char(10) to varchar(10)", oidBpchar, oidVarchar, varchar(10), varchar(10), false},
		{"numeric to numeric(10,2)", oidNumeric, oidNumeric, -1, numeric(10, 2), true},
		{"numeric(10,2) to numeric(12,2)", oidNumeric, oidNumeric, numeric(10, 2), numeric(12, 2), false},
		{"numeric(10,2) to numeric(8,2)", oidNumeric, oidNumeric, numeric(10, 2), numeric(8, 2), true},
		{"numeric(10,4) to numeric(10,2)", oidNumeric, oidNumeric, numeric(10, 4), numeric(10, 2), true},
		{"numeric(10,2) to numeric(11,3)", oidNumeric, oidNumeric, numeric(10, 2), numeric(11, 3), false},
		{"numeric(10,2) to numeric", oidNumeric, oidNumeric, numeric(10, 2), -1, false},
		{"integer to numeric(5,0)", oidInt4, oidNumeric, -1, numeric(5, 0), true},
		{"smallint to numeric(5,0)", oidInt2, oidNumeric, -1, numeric(5, 0), false},
		{"timestamp to timestamp(0)", oidTimestamp, oidTimestamp, -1, 0, true},
		{"timestamp(3) to timestamptz", oidTimestamp, oidTimestamptz, 3, -1, false},
		{"time to timestamp(0)", oidTime, oidTimestamp, -1, 0, false},
		{"integer to text", oidInt4, oidText, -1, -1, false},
		{"same type", oidVarchar, oidVarchar, varchar(5), varchar(5), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := narrows(tt.from, tt.fromMod, tt.to, tt.toMod); got != tt.want {
				t.Errorf("narrows = %v, want %v", got, tt.want)
			}
		})
	}
}
