package scopes

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"math/big"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/xeipuuv/gojsonschema"
)

//go:embed schema.json
var schemaJSON []byte

// SchemaJSON returns the JSON Schema (draft-07) every scope file must
// satisfy. It is the reference documentation of the scope format: every
// property has a description. The slice is a copy the caller may keep.
func SchemaJSON() []byte { return slices.Clone(schemaJSON) }

var compiledSchema = sync.OnceValues(func() (*gojsonschema.Schema, error) {
	return gojsonschema.NewSchema(gojsonschema.NewBytesLoader(schemaJSON))
})

// schemaTree is the schema decoded as plain JSON, used to explain errors
// (which fields are allowed where) in terms gojsonschema does not expose.
var schemaTree = sync.OnceValue(func() map[string]any {
	var tree map[string]any
	if err := json.Unmarshal(schemaJSON, &tree); err != nil {
		panic(fmt.Sprintf("scopes: embedded schema.json is not JSON: %v", err))
	}
	return tree
})

// patternHints say in words what the schema's patterns demand. A test
// checks that every pattern in schema.json has one.
var patternHints = map[string]string{
	`^[a-z][a-z0-9_-]{0,39}$`:                   "must start with a lower-case letter followed by at most 39 of a-z, 0-9, _ and -",
	`^[A-Za-z_][A-Za-z0-9_]*$`:                  "must be an environment variable name such as AIRLOCK_DATABASE_URL",
	`^[a-z_][a-z0-9_$]*$`:                       `must be a lower-case identifier such as "email"`,
	`^[a-z_][a-z0-9_$]*\.[a-z_][a-z0-9_$]*$`:    `must be a lower-case "schema.name" such as "public.orders"`,
	`^[0-9]+(h|d)$`:                             `must be whole hours or days, such as "36h" or "7d"`,
	`^([0-9]+(\.[0-9]+)?(h|m|s|ms|us|µs|ns))+$`: `must be a Go duration such as "30m" or "2h" (units h, m, s, ms, us, ns; there is no d: write "168h" for 7 days)`,
}

// validateSchema checks data (already known to be well-formed JSON that
// decodes to doc) against the embedded schema.
func validateSchema(data []byte, doc any) (problems, error) {
	schema, err := compiledSchema()
	if err != nil {
		return nil, fmt.Errorf("compile scope schema: %w", err)
	}
	res, err := schema.Validate(gojsonschema.NewBytesLoader(data))
	if err != nil {
		return nil, fmt.Errorf("validate scope: %w", err)
	}
	var ps problems
	for _, e := range res.Errors() {
		ps = append(ps, schemaProblem(e, doc))
	}
	return ps, nil
}

// schemaProblem rewrites a gojsonschema error as a problem with a precise
// path and a short lower-case message.
func schemaProblem(e gojsonschema.ResultError, doc any) problem {
	at := contextPath(e.Context(), doc)
	d := e.Details()
	switch e.Type() {
	case "required":
		return problem{at.key(d["property"].(string)), "is required"}
	case "additional_property_not_allowed":
		return unknownKey(at, d["property"].(string))
	case "invalid_type":
		given := withArticle(d["given"])
		if d["given"] == "number" { // gojsonschema's name for a number with a fraction
			given = "a fraction"
		}
		return problem{at, fmt.Sprintf("must be %s, not %s", withArticle(d["expected"]), given)}
	case "enum":
		return problem{at, fmt.Sprintf("must be one of %v", d["allowed"])}
	case "pattern":
		pattern := fmt.Sprint(d["pattern"])
		if hint, ok := patternHints[pattern]; ok {
			return problem{at, hint}
		}
		return problem{at, "must match " + pattern}
	case "number_gte":
		return problem{at, "must be at least " + number(d["min"])}
	case "number_lte":
		return problem{at, "must be at most " + number(d["max"])}
	case "string_gte":
		if number(d["min"]) == "1" {
			return problem{at, "must not be empty"}
		}
		return problem{at, fmt.Sprintf("must be at least %s characters long", number(d["min"]))}
	case "string_lte":
		return problem{at, fmt.Sprintf("must be at most %s characters long", number(d["max"]))}
	case "array_min_items":
		if number(d["min"]) == "1" {
			return problem{at, "must not be empty"}
		}
		return problem{at, fmt.Sprintf("must have at least %s entries", number(d["min"]))}
	case "unique":
		i, _ := d["i"].(int)
		j, _ := d["j"].(int)
		return problem{at.index(j), fmt.Sprintf("repeats [%d]; entries must be unique", i)}
	}
	return problem{at, strings.ToLower(e.Description()[:1]) + e.Description()[1:]}
}

// unknownKey explains a key the schema does not declare at parent: either a
// misspelt field, or a map key (a table name) of the wrong shape.
func unknownKey(parent jsonPath, key string) problem {
	at := parent.key(key)
	node := schemaAt(parent)
	if pp, ok := node["patternProperties"].(map[string]any); ok && len(pp) > 0 {
		for pattern := range pp {
			if hint, ok := patternHints[pattern]; ok {
				return problem{at, "invalid key: " + hint}
			}
			return problem{at, "invalid key: must match " + pattern}
		}
	}
	var allowed []string
	if props, ok := node["properties"].(map[string]any); ok {
		for name := range props {
			allowed = append(allowed, name)
		}
	}
	slices.Sort(allowed)
	return problem{at, "unknown field; allowed here: " + strings.Join(allowed, ", ")}
}

// schemaAt returns the schema object that governs the value at path, or nil
// when the path leads outside the schema.
func schemaAt(path jsonPath) map[string]any {
	root := schemaTree()
	node := root
	for _, el := range path {
		node = resolveRef(root, node)
		var next any
		switch el := el.(type) {
		case int:
			next = node["items"]
		case string:
			next = propertySchema(node, el)
		}
		var ok bool
		if node, ok = next.(map[string]any); !ok {
			return nil
		}
	}
	return resolveRef(root, node)
}

func propertySchema(node map[string]any, key string) any {
	if props, ok := node["properties"].(map[string]any); ok {
		if s, ok := props[key]; ok {
			return s
		}
	}
	if pp, ok := node["patternProperties"].(map[string]any); ok {
		for pattern, s := range pp {
			if matched, _ := regexp.MatchString(pattern, key); matched {
				return s
			}
		}
	}
	return node["additionalProperties"]
}

// resolveRef follows a local "#/definitions/NAME" reference, the only kind
// schema.json uses.
func resolveRef(root, node map[string]any) map[string]any {
	ref, ok := node["$ref"].(string)
	if !ok {
		return node
	}
	defs, _ := root["definitions"].(map[string]any)
	target, _ := defs[strings.TrimPrefix(ref, "#/definitions/")].(map[string]any)
	return target
}

// contextPath turns gojsonschema's context, whose elements are all
// strings, into a jsonPath, walking doc to tell array indexes from object
// keys that happen to look like numbers.
func contextPath(ctx *gojsonschema.JsonContext, doc any) jsonPath {
	if ctx == nil {
		return nil
	}
	// NUL cannot occur in any key the schema accepts; it only has to
	// separate elements here.
	elems := strings.Split(ctx.String("\x00"), "\x00")[1:] // drop "(root)"
	var path jsonPath
	node := doc
	for _, el := range elems {
		if arr, ok := node.([]any); ok {
			if i, err := strconv.Atoi(el); err == nil && i >= 0 && i < len(arr) {
				path, node = path.index(i), arr[i]
				continue
			}
		}
		obj, _ := node.(map[string]any)
		path, node = path.key(el), obj[el]
	}
	return path
}

func withArticle(typ any) string {
	switch s := fmt.Sprint(typ); s {
	case "array", "object", "integer":
		return "an " + s
	case "null":
		return "null"
	default:
		return "a " + s
	}
}

// number prints a schema bound (gojsonschema hands them over as *big.Float
// or plain integers) without exponent notation.
func number(v any) string {
	if f, ok := v.(*big.Float); ok {
		return f.Text('f', -1)
	}
	return fmt.Sprint(v)
}
