package main

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/airlock-dev/airlock/internal/safetext"
	"github.com/airlock-dev/airlock/migrate"
	"github.com/airlock-dev/airlock/review"
)

// How the reviewer's commands show text the agent wrote. The reviewer's
// decision is a layer of defense (docs/architecture.md, Layers of defense)
// and the agent is the adversary (docs/architecture.md, Threat model): its
// ticket, summary, SQL and the names in its migration must not hide
// anything from the reviewer nor forge a line of airlock's own. So every
// such string goes through internal/safetext: one-line fields with
// safetext.Line, SQL with safetext.Block and a line number on every line
// (airlock's headers have none), the dry-run report field by field.

// cell is s for one table cell: one line, at most n runes.
func cell(s string, n int) string { return safetext.LineMax(s, n) }

// writeSQL writes sql numbered, one "indent N | text" per line, so that no
// line of it can pass for a header or another statement's line.
func writeSQL(b *strings.Builder, sql, indent string) {
	lines := safetext.Block(strings.TrimRight(sql, "\n"))
	if len(lines) == 0 {
		b.WriteString(indent + "(none)\n")
		return
	}
	width := len(strconv.Itoa(len(lines)))
	for i, l := range lines {
		fmt.Fprintf(b, "%s%*d |", indent, width, i+1)
		if l != "" {
			b.WriteString(" " + l)
		}
		b.WriteString("\n")
	}
}

// reportText is r.Text() with every string of r (statements, object names,
// definitions, warnings, locks) rendered by safetext.Line first, so that
// the report's lines are the report's own. The statements' runs of ASCII
// whitespace become one space beforehand, as Text would make them.
func reportText(r *migrate.Report) string {
	cp := *r
	cp.Statements = slices.Clone(r.Statements)
	for i := range cp.Statements {
		cp.Statements[i].SQL = squeeze(cp.Statements[i].SQL)
		cp.Statements[i].ExecutedSQL = squeeze(cp.Statements[i].ExecutedSQL)
	}
	safe := mapStrings(reflect.ValueOf(&cp), safetext.Line).Interface().(*migrate.Report)
	var b strings.Builder
	for _, line := range strings.SplitAfter(safe.Text(), "\n") {
		if line == "" {
			continue
		}
		body := strings.TrimSuffix(line, "\n")
		// A string the copy did not reach (a field added to the report
		// later) still cannot get through raw.
		if !utf8.ValidString(body) || strings.ContainsFunc(body, safetext.Hidden) {
			body = safetext.Line(body)
		}
		b.WriteString(body + "\n")
	}
	return b.String()
}

// squeeze turns each run of spaces, tabs, newlines and carriage returns
// into one space. Other white space stays, for safetext to show.
func squeeze(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune(" \t\n\r", r) }), " ")
}

// mapStrings returns a deep copy of v with f applied to every string in
// it: in structs (exported fields), slices, arrays, maps and pointers.
// The copy leaves v as it was.
func mapStrings(v reflect.Value, f func(string) string) reflect.Value {
	switch v.Kind() {
	case reflect.String:
		out := reflect.New(v.Type()).Elem()
		out.SetString(f(v.String()))
		return out
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		out := reflect.New(v.Type().Elem())
		out.Elem().Set(mapStrings(v.Elem(), f))
		return out
	case reflect.Struct:
		out := reflect.New(v.Type()).Elem()
		out.Set(v)
		for i := range v.NumField() {
			if out.Field(i).CanSet() {
				out.Field(i).Set(mapStrings(v.Field(i), f))
			}
		}
		return out
	case reflect.Slice:
		if v.IsNil() {
			return v
		}
		out := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := range v.Len() {
			out.Index(i).Set(mapStrings(v.Index(i), f))
		}
		return out
	case reflect.Array:
		out := reflect.New(v.Type()).Elem()
		for i := range v.Len() {
			out.Index(i).Set(mapStrings(v.Index(i), f))
		}
		return out
	case reflect.Map:
		if v.IsNil() {
			return v
		}
		out := reflect.MakeMapWithSize(v.Type(), v.Len())
		for it := v.MapRange(); it.Next(); {
			out.SetMapIndex(mapStrings(it.Key(), f), mapStrings(it.Value(), f))
		}
		return out
	}
	return v
}

// rowsAffected is the total of rows the change's statements affected in
// its dry run (or its PREPARE run); ok is false when nothing says.
func rowsAffected(c *review.Change) (n int64, ok bool) {
	if c.Report != nil {
		for _, s := range c.Report.Statements {
			n += s.RowsAffected
		}
		return n, true
	}
	if c.Effects.RowsAffected != nil {
		for _, r := range c.Effects.RowsAffected {
			n += r
		}
		return n, true
	}
	return 0, false
}

func rowsText(c *review.Change) string {
	n, ok := rowsAffected(c)
	if !ok {
		return "-"
	}
	return strconv.FormatInt(n, 10)
}
