package jsonrpc

import "encoding/json"

type errorBody struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

type errorResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Error   errorBody       `json:"error"`
}

// Error returns the error response to the request with id (null when nil,
// as for a request that could not be read).
func Error(id json.RawMessage, code int, msg string) []byte {
	if id == nil {
		id = json.RawMessage("null")
	}
	b, err := json.Marshal(errorResponse{JSONRPC: "2.0", ID: id, Error: errorBody{Code: code, Message: msg}})
	if err != nil {
		// Only an id that is not JSON fails; answer without it.
		b, _ = json.Marshal(errorResponse{JSONRPC: "2.0", ID: json.RawMessage("null"), Error: errorBody{Code: code, Message: msg}})
	}
	return b
}
