package tools

import (
	"context"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/airlock-dev/airlock/scopes"
)

// Results says where a session's query rows go: the text content, the
// structured content, or both. Rows are sent once unless a client asks
// for both, because every byte of an answer is a token the model reads
// (docs/architecture.md, Results).
type Results uint8

const (
	// ResultsText puts the rows in the text content and sends no
	// structuredContent; the session's tools/list then carries no output
	// schema for query_readonly, so strict clients expect none. The
	// default: every host shows a tool's text to its model, while some
	// (Claude Code) show only structuredContent when it is present.
	ResultsText Results = iota
	// ResultsStructured puts the rows in structuredContent, validated by
	// the output schema, and a one-line summary in the text.
	ResultsStructured
	// ResultsBoth sends the rows twice, as airlock did before: for
	// clients that compare the two, and for debugging.
	ResultsBoth
)

// ResultsCapability is the experimental client capability that picks a
// session's Results: {"experimental": {"airlock/results": {"rows":
// "structured"}}} in initialize ("text", "structured" or "both").
const ResultsCapability = "airlock/results"

// ResultsOf reads the Results a client asked for in its capabilities;
// anything else is ResultsText.
func ResultsOf(caps *mcp.ClientCapabilities) Results {
	if caps == nil {
		return ResultsText
	}
	v, _ := caps.Experimental[ResultsCapability].(map[string]any)
	switch v["rows"] {
	case "structured":
		return ResultsStructured
	case "both":
		return ResultsBoth
	}
	return ResultsText
}

type resultsKey struct{}

// WithResults returns a context whose calls answer with r.
func WithResults(ctx context.Context, r Results) context.Context {
	if r == ResultsText {
		return ctx
	}
	return context.WithValue(ctx, resultsKey{}, r)
}

func resultsFrom(ctx context.Context) Results {
	r, _ := ctx.Value(resultsKey{}).(Results)
	return r
}

// StructuredTools are the tools whose output schema a ResultsText session
// does not see: their rows travel in the text instead.
var StructuredTools = []string{scopes.ToolQueryReadonly}
