// Package notify tells people outside airlock about held changes: it posts
// a JSON event to each configured webhook (a generic receiver or Slack)
// when a change waits for review, gathers an approval, commits, rolls back,
// expires or drifts, and when a branch is merged or discarded.
//
// A notification is a courtesy, the hold is the guarantee
// (docs/architecture.md, Approvals): whether a webhook answers must never
// delay or fail the tool call that produced the event. Notify therefore only
// puts the event on a bounded in-memory queue and returns; one goroutine
// per target delivers, retries with backoff and, when it gives up or its
// queue is full, says so through Config.OnFailure and the log. A receiver
// that is down holds up only its own queue.
//
// Every delivery is signed, so that a receiver can trust that an event
// came from this airlock and not from the agent, which can reach the same
// network and would like nothing better than to announce "committed" for a
// change nobody approved:
//
//	POST <target URL>
//	Content-Type: application/json
//	User-Agent: airlock-notify/1
//	X-Airlock-Event: change.pending
//	X-Airlock-Delivery: <UUID, the same on every retry of one delivery>
//	X-Airlock-Timestamp: <Unix seconds of this attempt>
//	X-Airlock-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
//
// A receiver checks the headers with Verify, and uses the delivery id to
// drop the duplicates that retries can cause (a response lost on the way
// back looks like a failure). Delivery is in order per target and best
// effort: an event is given up after Config.MaxAttempts, and the queues
// live in memory and are lost with the process.
//
// The generic body is the Event as JSON. A Slack target gets a one-line
// message instead; every string in it that an agent may have written is
// rendered with internal/safetext and Slack's own escaping, so that the
// agent cannot hide text, mention a channel or plant a link (see slack.go).
//
// Contract: it depends on no other airlock package but internal/safetext;
// the service (cmd/airlock) turns review events into Events and calls
// Notifier.Notify, which never blocks on the network.
package notify
