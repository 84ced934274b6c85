package reviewweb

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client calls the review API with a reviewer token: what
// `airlock pending/show/commit/rollback/revert --server URL` use.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// NewClient returns a client of the service at base (scheme://host[:port],
// the service's own address, without /review).
func NewClient(base, token string) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(base, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--server %q: give the service's address, such as https://airlock.example.com", base)
	}
	if strings.TrimSpace(token) == "" {
		return nil, errors.New("no reviewer token: set AIRLOCK_REVIEWER_TOKEN to your reviewer token")
	}
	u.Path = strings.TrimSuffix(u.Path, Prefix)
	return &Client{base: u.String(), token: strings.TrimSpace(token), http: &http.Client{
		Timeout: decideTimeout + time.Minute,
		// A redirect would carry the token elsewhere: never follow one.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}, nil
}

// APIError is the review API's refusal or failure.
type APIError struct {
	Status  int
	Code    string
	Message string
	// Keys (revert_conflict) are, per table, the keys of the rows changed
	// since the change was committed; Count how many there are in all.
	Keys  map[string][]string
	Count int
}

func (e *APIError) Error() string { return e.Message }

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+Prefix+"/api/"+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("review API: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("review API: read the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e ErrorJSON
		if json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
			return &APIError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message, Keys: e.Error.Keys, Count: e.Error.Count}
		}
		return &APIError{Status: resp.StatusCode, Code: "http", Message: fmt.Sprintf("review API: %s %s: HTTP %d", method, path, resp.StatusCode)}
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("review API: decode the answer to %s %s: %w", method, path, err)
	}
	return nil
}

// Whoami returns the reviewer the token names.
func (c *Client) Whoami(ctx context.Context) (string, error) {
	var out struct {
		Reviewer string `json:"reviewer"`
	}
	err := c.do(ctx, http.MethodGet, "whoami", nil, &out)
	return out.Reviewer, err
}

// Changes lists the pending changes.
func (c *Client) Changes(ctx context.Context) (*ChangesJSON, error) {
	var out ChangesJSON
	return &out, c.do(ctx, http.MethodGet, "changes", nil, &out)
}

// Change reads one change.
func (c *Client) Change(ctx context.Context, id string) (*ChangeJSON, error) {
	var out ChangeJSON
	return &out, c.do(ctx, http.MethodGet, "changes/"+url.PathEscape(id), nil, &out)
}

// Branch reads one branch.
func (c *Client) Branch(ctx context.Context, id string) (*BranchJSON, error) {
	var out BranchJSON
	return &out, c.do(ctx, http.MethodGet, "branches/"+url.PathEscape(id), nil, &out)
}

// Commit approves change id (committing it when it is the last approval
// needed), bound to expect when set.
func (c *Client) Commit(ctx context.Context, id, expect string) (*Outcome, error) {
	var out Outcome
	return &out, c.do(ctx, http.MethodPost, "changes/"+url.PathEscape(id)+"/commit", DecisionRequest{Expect: expect}, &out)
}

// Rollback rejects change id.
func (c *Client) Rollback(ctx context.Context, id, reason string) (*Outcome, error) {
	var out Outcome
	return &out, c.do(ctx, http.MethodPost, "changes/"+url.PathEscape(id)+"/rollback", DecisionRequest{Reason: reason}, &out)
}

// Revert records a pending change that undoes committed change id
// (onlyUnchanged: leaving the rows changed since as they are); the
// Outcome's Change is the revert.
func (c *Client) Revert(ctx context.Context, id string, onlyUnchanged bool) (*Outcome, error) {
	var out Outcome
	return &out, c.do(ctx, http.MethodPost, "changes/"+url.PathEscape(id)+"/revert", RevertRequest{OnlyUnchanged: onlyUnchanged}, &out)
}

// Merge approves merging branch id.
func (c *Client) Merge(ctx context.Context, id, expect string) (*Outcome, error) {
	var out Outcome
	return &out, c.do(ctx, http.MethodPost, "branches/"+url.PathEscape(id)+"/merge", DecisionRequest{Expect: expect}, &out)
}

// Discard discards branch id.
func (c *Client) Discard(ctx context.Context, id, reason string) (*Outcome, error) {
	var out Outcome
	return &out, c.do(ctx, http.MethodPost, "branches/"+url.PathEscape(id)+"/discard", DecisionRequest{Reason: reason}, &out)
}
