package notify

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/airlock-dev/airlock/internal/safetext"
)

// slackFieldMax bounds each field in a Slack message: the message is a
// heads-up, and the review page has the whole text.
const slackFieldMax = 200

func isSlackHost(host string) bool { return strings.EqualFold(host, "hooks.slack.com") }

// slackBody is a Slack incoming-webhook payload for ev.
func slackBody(ev Event) ([]byte, error) {
	b, err := json.Marshal(struct {
		Text string `json:"text"`
	}{slackText(ev)})
	if err != nil {
		return nil, fmt.Errorf("encode Slack message: %w", err)
	}
	return b, nil
}

// slackField renders a string that may come from the agent. safetext
// shows hidden and reordering characters as escapes, so the channel reads
// what the agent really wrote; escaping &, < and > (the only characters
// Slack asks to escape) keeps the agent from writing Slack's control
// sequences: a link <http://evil|looks fine>, a mention <!channel> or
// <@U123>.
func slackField(s string) string {
	return slackEscape(safetext.LineMax(s, slackFieldMax))
}

var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func slackEscape(s string) string { return slackEscaper.Replace(s) }

// slackLinkURL makes the review link safe inside <URL|label>: the URL
// ends at the first | or >, so those are percent-encoded, and & is
// escaped as everywhere in a message.
func slackLinkURL(s string) string {
	s = safetext.Line(s)
	s = strings.NewReplacer("|", "%7C", "<", "%3C", ">", "%3E", " ", "%20").Replace(s)
	return slackEscape(s)
}

// slackText is the message for ev, e.g.
//
//	:hourglass: Change waits for review — scope *orders*, risk *high*, 3 rows: <LINK|TICKET: SUMMARY>
func slackText(ev Event) string {
	var b strings.Builder
	by := ""
	if ev.Reviewer != "" {
		by = " by *" + slackField(ev.Reviewer) + "*"
	}
	switch ev.Type {
	case EventPending:
		b.WriteString(":hourglass: Change waits for review")
	case EventApproved:
		b.WriteString(":ballot_box_with_check: Approval")
		if ev.Required > 0 {
			fmt.Fprintf(&b, " %d of %d", ev.Approvals, ev.Required)
		}
		b.WriteString(" recorded" + by + ", change waits for another reviewer")
	case EventCommitted:
		b.WriteString(":white_check_mark: Change committed" + by)
	case EventRolledBack:
		b.WriteString(":leftwards_arrow_with_hook: Change rolled back" + by)
	case EventExpired:
		b.WriteString(":alarm_clock: Change expired without a decision, nothing was committed")
	case EventDrifted:
		b.WriteString(":warning: Change drifted: the commit did not do what the dry run did, nothing was committed")
	case EventBranchMerged:
		b.WriteString(":twisted_rightwards_arrows: Branch merged" + by)
	case EventBranchDiscarded:
		b.WriteString(":wastebasket: Branch discarded" + by)
	default:
		b.WriteString(":bell: " + slackField(ev.Type) + by)
	}

	var facts []string
	if ev.Scope != "" {
		facts = append(facts, "scope *"+slackField(ev.Scope)+"*")
	}
	if ev.Mode != "" {
		facts = append(facts, "mode *"+slackField(ev.Mode)+"*")
	}
	if ev.Risk != "" {
		facts = append(facts, "risk *"+slackField(ev.Risk)+"*")
	}
	if ev.RowsAffected == 1 {
		facts = append(facts, "1 row")
	} else {
		facts = append(facts, fmt.Sprintf("%d rows", ev.RowsAffected))
	}
	b.WriteString(" — " + strings.Join(facts, ", "))

	label := slackField(ev.Summary)
	switch {
	case ev.Ticket != "" && ev.Summary != "":
		label = slackField(ev.Ticket) + ": " + label
	case ev.Ticket != "":
		label = slackField(ev.Ticket)
	case ev.Summary == "":
		label = slackField(ev.ID)
	}
	if label != "" {
		b.WriteString(": ")
		if ev.Link != "" {
			b.WriteString("<" + slackLinkURL(ev.Link) + "|" + label + ">")
		} else {
			b.WriteString(label)
		}
	}
	if ev.Reason != "" {
		b.WriteString(" (reason: " + slackField(ev.Reason) + ")")
	}
	return b.String()
}
