package tools

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"sort"
	"strings"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/xeipuuv/gojsonschema"

	"github.com/airlock-dev/airlock/sqlguard"
)

// Arguments are checked here, against the tool's published input schema,
// rather than by mcp-go: its messages print validator internals
// ("/sql: &{Got:0 Want:1}"), and an agent needs to read which argument was
// wrong, what was expected and what it sent.

// inputSchemas caches compiled input schemas by tool name.
var inputSchemas sync.Map // string -> *gojsonschema.Schema

func compiledInput(tool, schema string) (*gojsonschema.Schema, error) {
	if s, ok := inputSchemas.Load(tool); ok {
		return s.(*gojsonschema.Schema), nil
	}
	s, err := gojsonschema.NewSchema(gojsonschema.NewStringLoader(schema))
	if err != nil {
		return nil, fmt.Errorf("compile %s input schema: %w", tool, err)
	}
	inputSchemas.Store(tool, s)
	return s, nil
}

// bindArgs validates the call's arguments against the tool's input schema
// and decodes them strictly into dst. A refusal names every problem.
func bindArgs(req mcp.CallToolRequest, tool, schema string, dst any) *sqlguard.Refusal {
	args := req.GetRawArguments()
	raw, isRaw := args.(json.RawMessage)
	if isRaw {
		if !json.Valid(raw) {
			return &sqlguard.Refusal{Code: "bad_arguments", Reason: "arguments are not valid JSON", Hint: "send a JSON object"}
		}
		if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
			isRaw = false
			args = nil
		}
	}
	if args == nil {
		// Absent and null arguments are both "none" (MCP makes them optional).
		args = map[string]any{}
	}
	compiled, err := compiledInput(tool, schema)
	if err != nil {
		return &sqlguard.Refusal{Code: "bad_arguments", Reason: err.Error()}
	}
	// The bytes as the client sent them, when mcp-go kept them: validated
	// and decoded once each, where a Go value would be encoded again twice.
	loader := gojsonschema.NewGoLoader(args)
	if isRaw {
		loader = gojsonschema.NewBytesLoader(raw)
	}
	res, err := compiled.Validate(loader)
	if err != nil {
		return &sqlguard.Refusal{Code: "bad_arguments", Reason: "arguments could not be read: " + err.Error(), Hint: "send a JSON object"}
	}
	if !res.Valid() {
		msgs := make([]string, 0, len(res.Errors()))
		for _, re := range res.Errors() {
			msgs = append(msgs, argProblem(re, schema))
		}
		sort.Strings(msgs)
		return &sqlguard.Refusal{Code: "bad_arguments", Reason: "invalid arguments: " + strings.Join(msgs, "; "),
			Hint: "see the tool's input schema: " + argSummary(schema)}
	}
	if !isRaw {
		if raw, err = json.Marshal(args); err != nil {
			return &sqlguard.Refusal{Code: "bad_arguments", Reason: "arguments are not JSON"}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(dst); err != nil {
		// The schema check above makes this unreachable for the tools'
		// own argument types; say what happened all the same.
		return &sqlguard.Refusal{Code: "bad_arguments", Reason: "invalid arguments: " + err.Error(), Hint: "see the tool's input schema: " + argSummary(schema)}
	}
	return nil
}

// argProblem says in words what is wrong with one argument.
func argProblem(e gojsonschema.ResultError, schema string) string {
	d := e.Details()
	field := argField(e.Field())
	switch e.Type() {
	case "required":
		return fmt.Sprintf("%q is required", d["property"])
	case "additional_property_not_allowed":
		return fmt.Sprintf("%q is not an argument of this tool (it takes %s)", d["property"], argSummary(schema))
	case "invalid_type":
		if field == "" {
			return fmt.Sprintf("the arguments must be %s, not %s", article(d["expected"]), given(d["given"], e.Value()))
		}
		return fmt.Sprintf("%s must be %s, not %s", field, article(d["expected"]), given(d["given"], e.Value()))
	case "string_gte":
		if bound(d["min"]) == "1" {
			return field + " must not be empty"
		}
		return fmt.Sprintf("%s must be at least %s characters long", field, bound(d["min"]))
	case "string_lte":
		return fmt.Sprintf("%s must be at most %s characters long", field, bound(d["max"]))
	case "number_gte":
		return fmt.Sprintf("%s must be at least %s, not %v", field, bound(d["min"]), e.Value())
	case "number_lte":
		return fmt.Sprintf("%s must be at most %s, not %v", field, bound(d["max"]), e.Value())
	case "array_max_items":
		return fmt.Sprintf("%s may have at most %s items", field, bound(d["max"]))
	}
	return field + ": " + e.Description()
}

// argField renders gojsonschema's field path ("params.3") as an argument
// reference (`"params"[3]`); the root is "".
func argField(f string) string {
	if f == "" || f == "(root)" {
		return ""
	}
	parts := strings.Split(f, ".")
	out := fmt.Sprintf("%q", parts[0])
	for _, p := range parts[1:] {
		out += "[" + p + "]"
	}
	return out
}

func article(t any) string {
	switch s := fmt.Sprint(t); s {
	case "array", "object", "integer":
		return "an " + s
	case "null":
		return "null"
	default:
		return "a " + s
	}
}

// given names the type of the value sent, with the value itself when it
// is short (it is the caller's own input, never data).
func given(t, v any) string {
	name := article(t)
	if t == "number" {
		name = "a fraction"
	}
	b, err := json.Marshal(v)
	if err != nil || len(b) > 40 {
		return name
	}
	return name + " (" + string(b) + ")"
}

func bound(v any) string {
	if f, ok := v.(*big.Float); ok {
		return f.Text('f', -1)
	}
	return fmt.Sprint(v)
}

// argSummary lists a schema's arguments, the required ones first:
// "sql (string, required), params (array), max_rows (integer)".
func argSummary(schema string) string {
	var s struct {
		Properties map[string]struct {
			Type any `json:"type"`
		} `json:"properties"`
		Required []string `json:"required"`
	}
	if err := json.Unmarshal([]byte(schema), &s); err != nil || len(s.Properties) == 0 {
		return "no arguments"
	}
	required := map[string]bool{}
	for _, r := range s.Required {
		required[r] = true
	}
	names := make([]string, 0, len(s.Properties))
	for n := range s.Properties {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		if required[names[i]] != required[names[j]] {
			return required[names[i]]
		}
		return names[i] < names[j]
	})
	parts := make([]string, len(names))
	for i, n := range names {
		typ := fmt.Sprint(s.Properties[n].Type)
		if required[n] {
			typ += ", required"
		}
		parts[i] = n + " (" + typ + ")"
	}
	return strings.Join(parts, ", ")
}
