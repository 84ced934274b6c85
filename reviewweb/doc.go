// Package reviewweb is the review page of the airlock service: reviewers
// see what waits, with its evidence, and decide under their own name
// (docs/architecture.md, Reviewers).
//
// It serves HTML rendered on the server (html/template, a little vanilla
// JavaScript, everything embedded) and the JSON API the page and
// `airlock pending/show/commit/rollback/revert --server` use, both under
// Prefix.
// Reviewers sign in with named reviewer tokens, never with an agent's
// bearer token: an agent token gets 401 on every path here, and a
// reviewer token opens nothing outside it. A decision is recorded under
// the token's name, not a typed one. Browser sessions live in an
// HttpOnly, SameSite=Strict cookie scoped to Prefix (Secure over TLS);
// every state-changing request needs the session's CSRF token and must
// come from the service's own origin.
//
// Decisions run through package review on the reviewer login the service
// was given for this page: a login of its own, never the service login
// (the database refuses the service login's decisions).
//
// Contract: the page and the API decide nothing themselves; every decision
// is a call into package review, which enforces approvals and the
// two-person rule whatever the client sends. The API's JSON shapes
// (apijson.go) are its contract with the page's script and the CLI.
package reviewweb
