package scopes

import (
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a scope file.
//
// Path locates the offending value in JSONPath notation: $ is the whole
// document, .name a field, ["public.orders"] a key that is not a plain
// identifier (table keys contain a dot, so they are always bracketed), [0]
// an array element. For example $.read.tables["public.customers"].mask[0].
// A missing required field is reported at the path it should have had.
type Problem struct {
	Path    string
	Message string
}

// String renders the problem as "PATH: MESSAGE".
func (p Problem) String() string { return p.Path + ": " + p.Message }

// ValidationError lists every problem found in a scope file, sorted by path
// (array indexes in numeric order). Parse and Load return it, possibly
// wrapped, so callers use errors.As to get the list.
type ValidationError struct {
	Problems []Problem
}

// Error renders one problem a line, as "PATH: MESSAGE".
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// FormatProblems renders err for a person fixing a scope file: one
// "PATH: MESSAGE" line a problem when err holds a *ValidationError (so
// without the "load scope FILE:" prefix), and err.Error() otherwise, for
// instance when the file cannot be read. It returns "" for a nil error.
func FormatProblems(err error) string {
	if err == nil {
		return ""
	}
	var ve *ValidationError
	if errors.As(err, &ve) {
		return ve.Error()
	}
	return err.Error()
}

// jsonPath is a location in a JSON document: string elements are object
// keys, int elements array indexes.
type jsonPath []any

// plainKey matches keys that can follow a dot without quoting.
var plainKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func (p jsonPath) String() string {
	var b strings.Builder
	b.WriteString("$")
	for _, el := range p {
		switch el := el.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", el)
		case string:
			if plainKey.MatchString(el) {
				b.WriteString("." + el)
			} else {
				b.WriteString("[" + strconv.Quote(el) + "]")
			}
		}
	}
	return b.String()
}

// key and index return extended copies; the receiver's backing array is
// never shared, so sibling paths cannot overwrite each other.
func (p jsonPath) key(k string) jsonPath { return append(slices.Clip(p), k) }
func (p jsonPath) index(i int) jsonPath  { return append(slices.Clip(p), i) }

// within reports whether p is q or lies below it.
func (p jsonPath) within(q jsonPath) bool {
	return len(q) <= len(p) && comparePaths(p[:len(q)], q) == 0
}

func comparePaths(a, b jsonPath) int {
	for i := range min(len(a), len(b)) {
		if c := compareElems(a[i], b[i]); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(a), len(b))
}

func compareElems(a, b any) int {
	ai, aIsInt := a.(int)
	bi, bIsInt := b.(int)
	switch {
	case aIsInt && bIsInt:
		return cmp.Compare(ai, bi)
	case aIsInt:
		return -1
	case bIsInt:
		return 1
	}
	return strings.Compare(a.(string), b.(string))
}

type problem struct {
	path jsonPath
	msg  string
}

type problems []problem

func (ps *problems) add(path jsonPath, format string, args ...any) {
	*ps = append(*ps, problem{path, fmt.Sprintf(format, args...)})
}

// err returns nil when there are no problems, else a *ValidationError with
// the problems sorted by path, then message, and exact duplicates dropped.
func (ps problems) err() error {
	if len(ps) == 0 {
		return nil
	}
	sorted := slices.Clone(ps)
	slices.SortStableFunc(sorted, func(a, b problem) int {
		return cmp.Or(comparePaths(a.path, b.path), strings.Compare(a.msg, b.msg))
	})
	ve := &ValidationError{}
	for _, p := range sorted {
		out := Problem{Path: p.path.String(), Message: p.msg}
		if n := len(ve.Problems); n > 0 && ve.Problems[n-1] == out {
			continue
		}
		ve.Problems = append(ve.Problems, out)
	}
	return ve
}
