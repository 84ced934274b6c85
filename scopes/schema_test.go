package scopes

import (
	"encoding/json"
	"reflect"
	"slices"
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

func TestSchemaEnumsMatchGo(t *testing.T) {
	t.Parallel()
	tests := []struct {
		path jsonPath
		want []string
	}{
		{jsonPath{"write", "allow", 0}, WriteKinds},
		{jsonPath{"tools", "disable", 0}, allTools},
	}
	for _, tt := range tests {
		var got []string
		for _, v := range schemaAt(tt.path)["enum"].([]any) {
			got = append(got, v.(string))
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("schema enum at %v = %v, want %v", tt.path, got, tt.want)
		}
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
