package server

import (
	"bufio"
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/mcp"
)

// writeMessage writes one JSON-RPC message and its newline to w.
//
// A tool call's answer (a CallToolResult of text content, with
// structuredContent that is already JSON) is written straight from the
// result: the text is escaped into w as it goes out, so that an answer of
// N bytes costs no second and third copy of N (the JSON of the result,
// then of the response around it) on its way to the pipe. Anything else
// goes through encoding/json. Both give the same JSON value; the direct
// path leaves <, > and & unescaped, which JSON allows and which keeps the
// rows fence readable byte for byte (docs/architecture.md, Results).
func writeMessage(w *bufio.Writer, msg mcp.JSONRPCMessage) error {
	if resp, ok := msg.(mcp.JSONRPCResponse); ok {
		if res, ok := resp.Result.(*mcp.CallToolResult); ok && directResult(res) {
			// Everything that can fail is done before the first byte is
			// written: a message is written whole or not at all.
			id, err := json.Marshal(resp.ID)
			if err != nil {
				return err
			}
			var meta []byte
			if res.Meta != nil {
				if meta, err = json.Marshal(res.Meta); err != nil {
					return err
				}
			}
			sc, _ := res.StructuredContent.(json.RawMessage)
			if sc != nil && !json.Valid(sc) {
				return errors.New("structuredContent is not valid JSON")
			}
			w.WriteString(`{"jsonrpc":"2.0","id":`)
			w.Write(id)
			w.WriteString(`,"result":`)
			writeToolResult(w, res, sc, meta)
			w.WriteString("}\n")
			return w.Flush()
		}
	}
	b, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	w.Write(b)
	w.WriteByte('\n')
	return w.Flush()
}

// directResult reports whether writeToolResult can encode res: nothing but
// plain text content, structured content already encoded, an error flag,
// a result type and airlock's own error payload in _meta.
func directResult(res *mcp.CallToolResult) bool {
	if len(res.InputRequests) > 0 || res.RequestState != "" || len(res.RawStructuredContent) > 0 {
		return false
	}
	if res.Meta != nil {
		if res.Meta.ProgressToken != nil || len(res.Meta.AdditionalFields) != 1 {
			return false
		}
		if _, ok := res.Meta.AdditionalFields["airlock/error"]; !ok {
			return false
		}
	}
	switch res.StructuredContent.(type) {
	case nil, json.RawMessage:
	default:
		return false
	}
	for _, c := range res.Content {
		tc, ok := c.(mcp.TextContent)
		if !ok || tc.Annotations != nil || tc.Meta != nil || tc.Type != "text" {
			return false
		}
	}
	return true
}

func writeToolResult(w *bufio.Writer, res *mcp.CallToolResult, structured, meta []byte) {
	w.WriteString(`{"content":[`)
	for i, c := range res.Content {
		if i > 0 {
			w.WriteByte(',')
		}
		w.WriteString(`{"type":"text","text":`)
		writeJSONString(w, c.(mcp.TextContent).Text)
		w.WriteByte('}')
	}
	w.WriteByte(']')
	if structured != nil {
		w.WriteString(`,"structuredContent":`)
		w.Write(structured)
	}
	if res.IsError {
		w.WriteString(`,"isError":true`)
	}
	if res.ResultType != "" {
		w.WriteString(`,"resultType":`)
		writeJSONString(w, string(res.ResultType))
	}
	if meta != nil {
		w.WriteString(`,"_meta":`)
		w.Write(meta)
	}
	w.WriteByte('}')
}

const hexDigits = "0123456789abcdef"

// writeJSONString writes s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced by U+FFFD (as
// encoding/json does), and U+2028/U+2029 escaped so that the line is safe
// to embed in JavaScript too.
func writeJSONString(w *bufio.Writer, s string) {
	w.WriteByte('"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			w.WriteString(s[start:i])
			switch b {
			case '"', '\\':
				w.WriteByte('\\')
				w.WriteByte(b)
			case '\n':
				w.WriteString(`\n`)
			case '\r':
				w.WriteString(`\r`)
			case '\t':
				w.WriteString(`\t`)
			default:
				w.WriteString(`\u00`)
				w.WriteByte(hexDigits[b>>4])
				w.WriteByte(hexDigits[b&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			w.WriteString(s[start:i])
			w.WriteString(`\ufffd`)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			w.WriteString(s[start:i])
			w.WriteString(`\u202`)
			w.WriteString(strconv.Itoa(int(r & 0xf)))
			i += size
			start = i
			continue
		}
		i += size
	}
	w.WriteString(s[start:])
	w.WriteByte('"')
}
