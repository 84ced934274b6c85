package reviewweb

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/airlock-dev/airlock/migrate"
	"github.com/airlock-dev/airlock/review"
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"failed","message":"could not encode the answer"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func apiError(w http.ResponseWriter, status int, code, msg string) {
	var e ErrorJSON
	e.Error.Code, e.Error.Message = code, msg
	writeJSON(w, status, e)
}

// classify maps a review error to the API's status and code.
func classify(err error) (int, string) {
	var (
		drift    *migrate.Drift
		conflict *review.RevertConflictError
		notRev   *review.NotRevertibleError
		notComm  *notCommittedError
		np       *review.NotPendingError
		notLive  *review.BranchNotLiveError
		mismatch *review.ApprovalMismatchError
		recheck  *review.RecheckError
		already  *review.AlreadyApprovedError
		noScope  *review.ScopeNotAppliedError
		pgErr    *pgconn.PgError
	)
	switch {
	case errors.Is(err, review.ErrNotFound):
		return http.StatusNotFound, "not_found"
	case errors.As(err, &drift):
		return http.StatusConflict, "drifted"
	case errors.As(err, &conflict):
		return http.StatusConflict, "revert_conflict"
	case errors.As(err, &notComm):
		return http.StatusConflict, "not_committed"
	case errors.As(err, &notRev):
		return http.StatusConflict, "not_revertible"
	case errors.As(err, &np), errors.As(err, &notLive):
		return http.StatusConflict, "not_pending"
	case errors.As(err, &mismatch):
		return http.StatusConflict, "approval_mismatch"
	case errors.As(err, &recheck):
		return http.StatusConflict, "recheck_failed"
	case errors.As(err, &already):
		return http.StatusConflict, "already_approved"
	case errors.As(err, &noScope):
		return http.StatusConflict, "scope_not_applied"
	case errors.As(err, &pgErr) && pgErr.Code == pgerrcode.InsufficientPrivilege:
		return http.StatusForbidden, "not_allowed"
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, "timeout"
	}
	return http.StatusInternalServerError, "failed"
}

func decodeDecision(w http.ResponseWriter, r *http.Request) (DecisionRequest, bool) {
	var d DecisionRequest
	ok := decodeBody(w, r, &d, `{"expect": "HASH"} or {"reason": "TEXT"}`)
	return d, ok
}

func decodeRevert(w http.ResponseWriter, r *http.Request) (RevertRequest, bool) {
	var d RevertRequest
	ok := decodeBody(w, r, &d, `{"only_unchanged": true}`)
	return d, ok
}

// decodeBody reads a request's JSON object into dst: an empty body is an
// empty object, an unknown field a bad request.
func decodeBody(w http.ResponseWriter, r *http.Request, dst any, example string) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		apiError(w, http.StatusRequestEntityTooLarge, "bad_request", "the request body is over 64 KiB")
		return false
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return true
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		apiError(w, http.StatusBadRequest, "bad_request", "the body must be a JSON object such as "+example+": "+err.Error())
		return false
	}
	return true
}

// answer writes a decision's outcome, or its refusal.
func answer(w http.ResponseWriter, out Outcome, err error) {
	if err != nil {
		status, code := classify(err)
		var e ErrorJSON
		e.Error.Code, e.Error.Message = code, err.Error()
		var conflict *review.RevertConflictError
		if errors.As(err, &conflict) {
			e.Error.Keys, e.Error.Count = conflict.Keys, conflict.Count
		}
		writeJSON(w, status, e)
		return
	}
	writeJSON(w, http.StatusOK, out)
}
