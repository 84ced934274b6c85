package scopes

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Bounds of write.review_ttl.
const (
	MinReviewTTL = time.Minute
	MaxReviewTTL = 7 * 24 * time.Hour
)

// Load reads and parses the scope file at path. A returned error names the
// file; when the file was read but is not a valid scope, a
// *ValidationError in its chain lists every problem (see Parse).
func Load(path string) (*Scope, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load scope: %w", err)
	}
	s, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("load scope %s: %w", path, err)
	}
	return s, nil
}

// Parse validates a scope file and returns the scope with defaults
// applied. Invalid JSON yields a single problem at $ giving the line and
// column of the syntax error. Otherwise every problem is reported at once,
// as a *ValidationError: duplicate keys, violations of the embedded schema
// (unknown fields included), and the checks the schema cannot express:
// masked columns must be listed in columns, ticket_pattern must be an
// anchored Go regexp, review_ttl must lie between MinReviewTTL and
// MaxReviewTTL, and tools.disable must leave at least one tool listed.
func Parse(data []byte) (*Scope, error) {
	if p := syntaxProblem(data); p != nil {
		return nil, problems{*p}.err()
	}
	doc, dups, err := decodeDocument(data)
	if err != nil {
		return nil, problems{{nil, fmt.Sprintf("invalid JSON: %v", err)}}.err()
	}
	schemaProblems, err := validateSchema(data, doc)
	if err != nil {
		return nil, err
	}
	ps := append(dups, schemaProblems...)
	for _, p := range semanticProblems(doc) {
		if !coveredBy(p, schemaProblems) {
			ps = append(ps, p)
		}
	}
	if err := ps.err(); err != nil {
		return nil, err
	}
	sc, err := decodeScope(data, doc)
	if err != nil {
		return nil, err
	}
	sc.source = bytes.Clone(data)
	return sc, nil
}

// syntaxProblem reports where data stops being JSON, or nil.
func syntaxProblem(data []byte) *problem {
	if len(bytes.TrimSpace(data)) == 0 {
		return &problem{nil, "the file is empty; a scope is a JSON object"}
	}
	err := json.Unmarshal(data, new(any))
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		return nil
	}
	// Offset counts the bytes read up to and including the offending one.
	// Truncated input has no offending byte: point just past the end.
	at := int(se.Offset) - 1
	if strings.HasPrefix(se.Error(), "unexpected end") {
		at = len(data)
	}
	at = max(0, min(at, len(data)))
	line := 1 + bytes.Count(data[:at], []byte("\n"))
	col := 1 + utf8.RuneCount(data[bytes.LastIndexByte(data[:at], '\n')+1:at])
	return &problem{nil, fmt.Sprintf("invalid JSON at line %d, column %d: %v", line, col, se)}
}

// decodeDocument decodes well-formed JSON into plain values, reporting keys
// that occur twice in one object: encoding/json would silently keep the
// last, while a reader of the file may trust the first.
func decodeDocument(data []byte) (any, problems, error) {
	d := documentDecoder{dec: json.NewDecoder(bytes.NewReader(data))}
	d.dec.UseNumber()
	doc, err := d.value(nil)
	return doc, d.dups, err
}

type documentDecoder struct {
	dec  *json.Decoder
	dups problems
}

func (d *documentDecoder) value(at jsonPath) (any, error) {
	tok, err := d.dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		obj := map[string]any{}
		for d.dec.More() {
			tok, err := d.dec.Token()
			if err != nil {
				return nil, err
			}
			key := tok.(string)
			if _, dup := obj[key]; dup {
				d.dups.add(at.key(key), "appears more than once in the same object")
			}
			if obj[key], err = d.value(at.key(key)); err != nil {
				return nil, err
			}
		}
		_, err := d.dec.Token()
		return obj, err
	case json.Delim('['):
		arr := []any{}
		for i := 0; d.dec.More(); i++ {
			v, err := d.value(at.index(i))
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		_, err := d.dec.Token()
		return arr, err
	}
	return tok, nil
}

// coveredBy reports whether the schema already found a problem at p's path
// or above it, which makes p noise.
func coveredBy(p problem, schemaProblems problems) bool {
	for _, sp := range schemaProblems {
		if p.path.within(sp.path) {
			return true
		}
	}
	return false
}

// semanticProblems runs the checks the schema cannot express. It works on
// the raw document, skipping any value of the wrong type (the schema
// reports those), so it can run even when the schema check failed.
func semanticProblems(doc any) problems {
	var ps problems
	root, _ := doc.(map[string]any)
	read, _ := root["read"].(map[string]any)
	tables, _ := read["tables"].(map[string]any)
	for key, rule := range tables {
		rule, _ := rule.(map[string]any)
		checkMask(&ps, jsonPath{"read", "tables", key}, rule)
		if f, ok := rule["row_filter"].(string); ok && strings.TrimSpace(f) != "" && tableKey.MatchString(key) {
			if _, err := ParseRowFilter(key, f); err != nil {
				ps.add(jsonPath{"read", "tables", key, "row_filter"}, "%v", err)
			}
		}
	}
	write, _ := root["write"].(map[string]any)
	if own, _ := write["own_tables"].(bool); own {
		for i, t := range stringsIn(write["tables"]) {
			rule, _ := tables[t].(map[string]any)
			if f, _ := rule["row_filter"].(string); f != "" {
				ps.add(jsonPath{"write", "tables"}.index(i), "%s", OwnTablesRowFilterConflict(t))
			}
		}
	}
	if pattern, ok := write["ticket_pattern"].(string); ok {
		checkTicketPattern(&ps, jsonPath{"write", "ticket_pattern"}, pattern)
	}
	if ttl, ok := write["review_ttl"].(string); ok {
		if _, err := parseReviewTTL(ttl); err != nil {
			ps.add(jsonPath{"write", "review_ttl"}, "%v", err)
		}
	}
	if undo, ok := write["undo"].(map[string]any); ok {
		if r, ok := undo["retention"].(string); ok {
			if _, err := parseRetention(r); err != nil {
				ps.add(jsonPath{"write", "undo", "retention"}, "%v", err)
			}
		}
	}
	if branch, ok := write["branch"].(map[string]any); ok {
		if ttl, ok := branch["branch_ttl"].(string); ok {
			if _, err := parseReviewTTL(ttl); err != nil {
				ps.add(jsonPath{"write", "branch", "branch_ttl"}, "%v", err)
			}
		}
		if mode, _ := write["mode"].(string); WriteMode(mode) != ModeBranch {
			ps.add(jsonPath{"write", "branch"}, `only applies to write.mode "branch"`)
		}
	}
	tools, _ := root["tools"].(map[string]any)
	checkSomeToolListed(&ps, jsonPath{"tools", "disable"}, write != nil, stringsIn(tools["disable"]))
	return ps
}

// tableKey is the shape of a read table key the schema accepts.
var tableKey = regexp.MustCompile(`^[a-z_][a-z0-9_$]*\.[a-z_][a-z0-9_$]*$`)

// OwnTablesRowFilterConflict is why a write table cannot have a row_filter
// under write.own_tables; check and scope plan say it in the same words.
func OwnTablesRowFilterConflict(table string) string {
	return fmt.Sprintf("%s has a row_filter, and write.own_tables would make the write role its owner, which row-level security does not bind: drop one of the two", table)
}

func checkMask(ps *problems, at jsonPath, rule map[string]any) {
	cols, ok := rule["columns"].([]any)
	if !ok {
		return
	}
	listed := map[string]bool{}
	for _, c := range stringsIn(cols) {
		listed[c] = true
	}
	mask, _ := rule["mask"].([]any)
	for i, m := range mask {
		if m, ok := m.(string); ok && !listed[m] {
			ps.add(at.key("mask").index(i), "%q is not in columns; a masked column must also be listed in columns", m)
		}
	}
}

func checkTicketPattern(ps *problems, at jsonPath, pattern string) {
	if _, err := regexp.Compile(pattern); err != nil {
		ps.add(at, "not a valid Go regular expression: %v", err)
		return
	}
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil || !anchoredAtStart(re) || !anchoredAtEnd(re) {
		ps.add(at, "must be anchored: start it with ^ and end it with $ so that the whole ticket has to match")
	}
}

// anchoredAtStart and anchoredAtEnd walk the parsed regexp rather than
// looking at its first and last characters: "^A|B$" is anchored at neither
// end, while "^(A|B)$" and "^A$|^B$" are anchored at both.
func anchoredAtStart(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpBeginText:
		return true
	case syntax.OpCapture:
		return anchoredAtStart(re.Sub[0])
	case syntax.OpConcat:
		return len(re.Sub) > 0 && anchoredAtStart(re.Sub[0])
	case syntax.OpAlternate:
		for _, sub := range re.Sub {
			if !anchoredAtStart(sub) {
				return false
			}
		}
		return true
	}
	return false
}

func anchoredAtEnd(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpEndText:
		return true
	case syntax.OpCapture:
		return anchoredAtEnd(re.Sub[0])
	case syntax.OpConcat:
		return len(re.Sub) > 0 && anchoredAtEnd(re.Sub[len(re.Sub)-1])
	case syntax.OpAlternate:
		for _, sub := range re.Sub {
			if !anchoredAtEnd(sub) {
				return false
			}
		}
		return true
	}
	return false
}

func parseReviewTTL(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, errors.New(`must be a Go duration such as "30m" or "2h"`)
	}
	if d < MinReviewTTL || d > MaxReviewTTL {
		return 0, errors.New("must be between 1m and 168h (7 days)")
	}
	return d, nil
}

// Bounds of write.undo.retention.
const (
	MinUndoRetention = time.Hour
	MaxUndoRetention = 90 * 24 * time.Hour
)

// parseRetention reads a retention of whole hours or days: "36h", "7d".
func parseRetention(s string) (time.Duration, error) {
	n, err := strconv.Atoi(s[:max(0, len(s)-1)])
	unit := s[len(s)-1:]
	if err != nil || n <= 0 || (unit != "h" && unit != "d") {
		return 0, errors.New(`must be whole hours or days, such as "36h" or "7d"`)
	}
	d := time.Duration(n) * time.Hour
	if unit == "d" {
		d *= 24
	}
	if d < MinUndoRetention || d > MaxUndoRetention {
		return 0, errors.New("must be between 1h and 90d")
	}
	return d, nil
}

func checkSomeToolListed(ps *problems, at jsonPath, hasWrite bool, disable []string) {
	s := Scope{Tools: Tools{Disable: disable}}
	if hasWrite {
		s.Write = &Write{}
	}
	switch {
	case len(s.EnabledTools()) > 0:
	case hasWrite:
		ps.add(at, "disables every tool; the agent would have none")
	default:
		ps.add(at, "disables every read tool, and without a write section no write tool is listed; the agent would have none")
	}
}

// stringsIn returns the strings among vs, which is a JSON array or not.
func stringsIn(vs any) []string {
	arr, _ := vs.([]any)
	var out []string
	for _, v := range arr {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// decodeScope turns a document that passed every check into a Scope.
func decodeScope(data []byte, doc any) (*Scope, error) {
	var s Scope
	if err := json.Unmarshal(data, &s); err != nil {
		// The schema accepts 1.0 and 1e3 as integers; encoding/json does not.
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			var at jsonPath
			for _, k := range strings.Split(te.Field, ".") {
				at = at.key(k)
			}
			return nil, problems{{at, "must be a whole number written without a fraction or exponent"}}.err()
		}
		return nil, fmt.Errorf("decode scope: %w", err)
	}
	if s.Write != nil {
		write := doc.(map[string]any)["write"].(map[string]any)
		if ttl, ok := write["review_ttl"].(string); ok {
			s.Write.ReviewTTL, _ = parseReviewTTL(ttl) // checked already
		}
		if undo, ok := write["undo"].(map[string]any); ok && s.Write.Undo != nil {
			if r, ok := undo["retention"].(string); ok {
				s.Write.Undo.Retention, _ = parseRetention(r) // checked already
			}
		}
		if branch, ok := write["branch"].(map[string]any); ok && s.Write.Branch != nil {
			if ttl, ok := branch["branch_ttl"].(string); ok {
				s.Write.Branch.TTL, _ = parseReviewTTL(ttl) // checked already
			}
		}
	}
	s.applyDefaults()
	return &s, nil
}
