package scopes

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestSchemaCompiles(t *testing.T) {
	t.Parallel()
	if _, err := compiledSchema(); err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(SchemaJSON(), &v); err != nil {
		t.Fatal(err)
	}
	if v["$schema"] != "http://json-schema.org/draft-07/schema#" {
		t.Errorf("$schema = %v, want draft-07", v["$schema"])
	}
}

var update = flag.Bool("update", false, "rewrite the enums of schema.json generated from Go")

// generatedEnums are the enums of schema.json that are generated from the
// Go lists the code decides by: the schema documents the format, the Go
// lists are the one source of the names.
var generatedEnums = []struct {
	path jsonPath
	want []string
}{
	{jsonPath{"write", "allow", 0}, WriteKinds},
	{jsonPath{"tools", "disable", 0}, allTools},
	{jsonPath{"write", "mode"}, writeModeNames()},
}

func writeModeNames() []string {
	var out []string
	for _, m := range WriteModes {
		out = append(out, string(m))
	}
	return out
}

// TestSchemaEnumsMatchGo fails when an enum of the embedded schema differs
// from its Go list; with -update it rewrites schema.json's enum in place
// (go test ./scopes -run TestSchemaEnumsMatchGo -update), leaving the rest
// of the file as written.
func TestSchemaEnumsMatchGo(t *testing.T) {
	data, err := os.ReadFile("schema.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, schemaJSON) && !*update {
		t.Fatal("schema.json differs from the embedded schema: rebuild")
	}
	rewritten := data
	for _, tt := range generatedEnums {
		var got []string
		for _, v := range schemaAt(tt.path)["enum"].([]any) {
			got = append(got, v.(string))
		}
		if reflect.DeepEqual(got, tt.want) {
			continue
		}
		if !*update {
			t.Errorf("schema enum at %v = %v, want %v (run go test ./scopes -run TestSchemaEnumsMatchGo -update)", tt.path, got, tt.want)
			continue
		}
		if rewritten, err = replaceEnum(rewritten, documentPath(tt.path), tt.want); err != nil {
			t.Fatalf("enum at %v: %v", tt.path, err)
		}
	}
	if !*update || bytes.Equal(rewritten, data) {
		return
	}
	var tree map[string]any
	if err := json.Unmarshal(rewritten, &tree); err != nil {
		t.Fatalf("rewritten schema.json is not JSON: %v", err)
	}
	if err := os.WriteFile("schema.json", rewritten, 0o644); err != nil {
		t.Fatal(err)
	}
}

// documentPath turns a path into a scope document into the path of the
// schema object that governs it, key by key: properties.K for a key,
// items for an index, then enum.
func documentPath(path jsonPath) []string {
	var out []string
	for _, el := range path {
		switch el := el.(type) {
		case int:
			out = append(out, "items")
		case string:
			out = append(out, "properties", el)
		}
	}
	return append(out, "enum")
}

// replaceEnum replaces the JSON value at path in data with the array of
// values, keeping every other byte. An array that fits stays on one line;
// a longer one is wrapped, one level deeper than its key.
func replaceEnum(data []byte, path []string, values []string) ([]byte, error) {
	f := spanFinder{dec: json.NewDecoder(bytes.NewReader(data)), data: data, start: -1}
	if err := f.value(path, false); err != nil {
		return nil, err
	}
	if f.start < 0 {
		return nil, fmt.Errorf("no value at %v", path)
	}
	lineStart := bytes.LastIndexByte(data[:f.start], '\n') + 1
	indent := len(data[lineStart:]) - len(bytes.TrimLeft(data[lineStart:], " "))
	quoted := make([]string, len(values))
	for i, v := range values {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		quoted[i] = string(b)
	}
	text := "[" + strings.Join(quoted, ", ") + "]"
	if f.start-lineStart+len(text) > 100 {
		pad := strings.Repeat(" ", indent+2)
		var lines []string
		line := ""
		for i, q := range quoted {
			if i < len(quoted)-1 {
				q += ","
			}
			if line != "" && len(pad)+len(line)+1+len(q) > 78 {
				lines = append(lines, pad+line)
				line = ""
			}
			if line != "" {
				line += " "
			}
			line += q
		}
		lines = append(lines, pad+line)
		text = "[\n" + strings.Join(lines, "\n") + "\n" + strings.Repeat(" ", indent) + "]"
	}
	return slices.Concat(data[:f.start], []byte(text), data[f.end:]), nil
}

// spanFinder finds the byte span of the value at a path of object keys,
// with the decoder's token offsets rather than by searching the text.
type spanFinder struct {
	dec        *json.Decoder
	data       []byte
	start, end int
}

func (f *spanFinder) value(path []string, target bool) error {
	before := int(f.dec.InputOffset())
	tok, err := f.dec.Token()
	if err != nil {
		return err
	}
	if target {
		// Between the key and its value lie only white space and the colon.
		f.start = before + len(f.data[before:]) - len(bytes.TrimLeft(f.data[before:], " \t\r\n:"))
	}
	switch tok {
	case json.Delim('{'):
		for f.dec.More() {
			k, err := f.dec.Token()
			if err != nil {
				return err
			}
			var sub []string
			on := len(path) > 0 && path[0] == k.(string)
			if on {
				sub = path[1:]
			}
			if err := f.value(sub, on && len(sub) == 0); err != nil {
				return err
			}
		}
		if _, err := f.dec.Token(); err != nil {
			return err
		}
	case json.Delim('['):
		for f.dec.More() {
			if err := f.value(nil, false); err != nil {
				return err
			}
		}
		if _, err := f.dec.Token(); err != nil {
			return err
		}
	}
	if target {
		f.end = int(f.dec.InputOffset())
	}
	return nil
}

// TestReplaceEnum rewrites an enum that fits on a line and one that does
// not, and leaves the rest of the document byte for byte.
func TestReplaceEnum(t *testing.T) {
	t.Parallel()
	doc := "{\n  \"properties\": {\"a\": {\"enum\": [\"x\"], \"type\": \"string\"},\n    \"b\": {\"enum\": []}}\n}\n"
	got, err := replaceEnum([]byte(doc), []string{"properties", "a", "enum"}, []string{"x", "y"})
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Replace(doc, `["x"]`, `["x", "y"]`, 1); string(got) != want {
		t.Errorf("short enum:\n%s\nwant\n%s", got, want)
	}
	long := slices.Repeat([]string{"a_rather_long_kind_name"}, 5)
	got, err = replaceEnum([]byte(doc), []string{"properties", "b", "enum"}, long)
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Properties struct {
			B struct{ Enum []string }
		}
	}
	if err := json.Unmarshal(got, &v); err != nil || !reflect.DeepEqual(v.Properties.B.Enum, long) {
		t.Errorf("long enum: %v\n%s", err, got)
	}
	if !strings.HasPrefix(string(got), doc[:strings.Index(doc, `"b"`)]) || !strings.Contains(string(got), "\n    ]}}\n}\n") {
		t.Errorf("long enum not wrapped in place:\n%s", got)
	}
	if _, err := replaceEnum([]byte(doc), []string{"properties", "c", "enum"}, long); err == nil {
		t.Error("missing path: no error")
	}
}

// TestSchemaShape holds schema.json to its promises: every object rejects
// unknown fields, every property is documented, every pattern has a hint.
func TestSchemaShape(t *testing.T) {
	t.Parallel()
	var walk func(where string, node map[string]any)
	walk = func(where string, node map[string]any) {
		if node["type"] == "object" && node["additionalProperties"] != false {
			t.Errorf("%s: object without additionalProperties: false", where)
		}
		if p, ok := node["pattern"].(string); ok && patternHints[p] == "" {
			t.Errorf("%s: pattern %s has no entry in patternHints", where, p)
		}
		for _, kw := range []string{"properties", "patternProperties", "definitions"} {
			children, _ := node[kw].(map[string]any)
			for name, child := range children {
				child := child.(map[string]any)
				if kw == "patternProperties" && patternHints[name] == "" {
					t.Errorf("%s: key pattern %s has no entry in patternHints", where, name)
				}
				if child["description"] == nil {
					t.Errorf("%s.%s: no description", where, name)
				}
				walk(where+"."+name, child)
			}
		}
		if items, ok := node["items"].(map[string]any); ok {
			walk(where+"[]", items)
		}
	}
	walk("$", schemaTree())
}

func TestWriteKindsUnique(t *testing.T) {
	t.Parallel()
	sorted := slices.Clone(WriteKinds)
	slices.Sort(sorted)
	if len(slices.Compact(sorted)) != len(WriteKinds) || len(WriteKinds) != 24 {
		t.Errorf("WriteKinds has duplicates or is not the closed list of 24: %v", WriteKinds)
	}
}

// TestImportsNoAirlockPackage holds the layering (doc.go): scopes is at
// the bottom, so none of its files may import another airlock package.
func TestImportsNoAirlockPackage(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			if path, _ := strconv.Unquote(imp.Path.Value); strings.HasPrefix(path, "github.com/airlock-dev/airlock/") {
				t.Errorf("%s imports %s: scopes may import no airlock package", name, path)
			}
		}
	}
}
