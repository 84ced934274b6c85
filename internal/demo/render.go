package demo

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/mcp"
)

const (
	// width is the column the tour wraps prose at.
	width = 78
	// indent sets off what the agent and the reviewer do from the headings.
	indent = "   "
)

// printer writes the tour. It keeps to plain text (no colors, no cursor
// tricks), so that the tour reads the same in a terminal, a pipe or a log.
type printer struct {
	w    io.Writer
	open bool // a status line waits for its outcome
}

func newPrinter(w io.Writer) *printer { return &printer{w: w} }

func (p *printer) printf(format string, args ...any) {
	fmt.Fprintf(p.w, format, args...)
}

func (p *printer) intro(keep bool) {
	p.printf("airlock demo: a scripted AI agent works on a sample database through airlock.\n")
	if keep {
		p.printf("Everything runs on a private PostgreSQL, which stays up afterwards (--keep).\n\n")
	} else {
		p.printf("Everything runs on a private, throwaway PostgreSQL, removed at the end.\n\n")
	}
}

// status starts a line for an action whose outcome done or abort ends.
func (p *printer) status(format string, args ...any) {
	p.printf(format+" ... ", args...)
	p.open = true
}

// done ends a status line.
func (p *printer) done(detail string, d time.Duration) {
	if detail != "" {
		detail += " "
	}
	p.printf("%s(%.1f s)\n", detail, d.Seconds())
	p.open = false
}

// abort ends a status line whose action failed or was interrupted, so
// that the error starts on a line of its own.
func (p *printer) abort(interrupted bool) {
	if p.open {
		if interrupted {
			p.printf("interrupted\n")
		} else {
			p.printf("failed\n")
		}
		p.open = false
	}
}

// step starts one scene of the tour: a numbered heading and what it shows.
func (p *printer) step(n int, title, explain string) {
	head := fmt.Sprintf("── %d. %s ", n, title)
	if pad := width - utf8.RuneCountInString(head); pad > 0 {
		head += strings.Repeat("─", pad)
	}
	p.printf("\n%s\n", head)
	for _, line := range wrap(explain, width-len(indent)) {
		p.printf("%s%s\n", indent, line)
	}
}

// call shows a tool call: on one line when it fits, otherwise one argument
// a line with multi-line values indented under their first line.
func (p *printer) call(tool string, args []arg) {
	p.printf("\n")
	lead := indent + "agent → "
	if one, ok := oneLineCall(tool, args); ok && utf8.RuneCountInString(lead+one) <= width {
		p.printf("%s%s\n", lead, one)
		return
	}
	p.printf("%s%s\n", lead, tool)
	keyWidth := 0
	for _, a := range args {
		keyWidth = max(keyWidth, len(a.name)+1)
	}
	pad := strings.Repeat(" ", utf8.RuneCountInString(lead))
	for _, a := range args {
		lines := strings.Split(argText(a.value), "\n")
		p.printf("%s%-*s %s\n", pad, keyWidth, a.name+":", lines[0])
		for _, l := range lines[1:] {
			p.printf("%s%s %s\n", pad, strings.Repeat(" ", keyWidth), l)
		}
	}
}

func oneLineCall(tool string, args []arg) (string, bool) {
	parts := make([]string, len(args))
	for i, a := range args {
		s := argText(a.value)
		if strings.Contains(s, "\n") {
			return "", false
		}
		b, _ := json.Marshal(s)
		parts[i] = a.name + ": " + string(b)
	}
	return tool + "(" + strings.Join(parts, ", ") + ")", true
}

func argText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// result shows what a tool returned: its text content, prose lines wrapped,
// cut after maxLines lines.
func (p *printer) result(res *mcp.CallToolResult, maxLines int) {
	mark := "←"
	if res.IsError {
		mark = "✗"
	}
	var lines []string
	for _, line := range strings.Split(strings.TrimRight(resultText(res), "\n"), "\n") {
		if isData(line) {
			lines = append(lines, line)
			continue
		}
		lines = append(lines, wrap(line, width-len(indent)-2)...)
	}
	p.block(indent+mark+" ", indent+"  ", lines, maxLines)
}

// isData reports whether a line of tool output is a result row or a fence,
// which wrapping would make harder to read.
func isData(line string) bool {
	return strings.HasPrefix(line, "[") || strings.HasPrefix(line, "{") || strings.HasPrefix(line, "<")
}

// command shows a command the reviewer types, and what it printed.
func (p *printer) command(args []string, out string, maxLines int) {
	p.printf("\n%sreviewer $ airlock %s\n", indent, strings.Join(args, " "))
	p.block(indent+"  ", indent+"  ", strings.Split(strings.TrimRight(out, "\n"), "\n"), maxLines)
}

// block prints lines, the first after first and the rest after rest, and
// says how many lines it left out beyond maxLines.
func (p *printer) block(first, rest string, lines []string, maxLines int) {
	cut := 0
	if maxLines > 0 && len(lines) > maxLines {
		cut = len(lines) - maxLines
		lines = lines[:maxLines]
	}
	for i, line := range lines {
		lead := rest
		if i == 0 {
			lead = first
		}
		p.printf("%s\n", strings.TrimRight(lead+line, " "))
	}
	if cut > 0 {
		p.printf("%s… %d more line%s\n", rest, cut, plural(cut))
	}
}

// note is a line of commentary after a call.
func (p *printer) note(format string, args ...any) {
	p.printf("\n")
	for _, line := range wrap(fmt.Sprintf(format, args...), width-len(indent)) {
		p.printf("%s%s\n", indent, line)
	}
}

func (p *printer) outro() {
	p.printf("\n%s\n", strings.Repeat("─", width))
	for _, line := range wrap("That was airlock. The agent never had a way to run arbitrary SQL: "+
		"reads ran read-only and rolled back, PII came back masked, writes waited for a human, "+
		"and every step is on the record.", width) {
		p.printf("%s\n", line)
	}
}

// kept tells how to use a kept demo with a real agent, and how to stop it.
func (p *printer) kept(st state, stateDir string) {
	type mcpServer struct {
		Command string            `json:"command"`
		Args    []string          `json:"args"`
		Env     map[string]string `json:"env"`
	}
	server := mcpServer{Command: st.Binary, Args: []string{"serve", "--scope", st.Scope}, Env: map[string]string{urlEnv: st.AgentURL}}
	snippet, _ := json.MarshalIndent(map[string]any{"mcpServers": map[string]any{"airlock-demo": server}}, "", "  ")
	bin := shellQuote(st.Binary)
	p.printf("\nThe demo database is still running (port %d, data in %s).\n", st.Port, st.Dir)
	p.printf("\nTo give a real agent the read tools, add this to your MCP client's config\n")
	p.printf("(Claude Desktop, Cursor, .mcp.json). It holds the agent's own login, which\ncan read the scope and nothing more, whatever the agent does with it:\n\n%s\n", snippet)
	p.printf("\nor, for Claude Code:\n\n  claude mcp add --transport stdio --env %s=%s airlock-demo -- %s serve --scope %s\n",
		urlEnv, shellQuote(st.AgentURL), bin, shellQuote(st.Scope))
	p.printf("\nFor the write tools, run the airlock service in a terminal of its own (it\nholds the service login, in a file only you can read) and point the agent at it:\n\n")
	p.printf("  %s serve --scope %s --http 127.0.0.1:8765 \\\n      --database-url-file %s --http-token-file %s\n",
		bin, shellQuote(st.Scope), shellQuote(filepath.Join(stateDir, "service-url")), shellQuote(filepath.Join(stateDir, "agent-token")))
	p.printf("  claude mcp add --transport http airlock-demo http://127.0.0.1:8765/mcp \\\n      --header \"Authorization: Bearer $(cat %s)\"\n",
		shellQuote(filepath.Join(stateDir, "agent-token")))
	p.printf("\nReview its changes in your own shell, with the reviewer's login (not the\nagent's, not the service's: the database refuses their decisions):\n\n  export %s=%s\n  %s pending\n",
		urlEnv, shellQuote(st.ReviewerURL), bin)
	p.printf("\nWhen you are done:\n\n  %s demo --stop\n", bin)
	p.printf("\n(state: %s)\n", stateDir)
}

// finalNote is the last line of an unkept tour.
func (p *printer) finalNote(format string, args ...any) {
	p.printf("\n"+format+"\n", args...)
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-:@=,+", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// wrap breaks s into lines of at most n runes at spaces; a word longer
// than n gets a line of its own. The continuation lines of an indented or
// list line ("- x", "2. x") hang under its text.
func wrap(s string, n int) []string {
	if utf8.RuneCountInString(s) <= n {
		return []string{s}
	}
	hang := strings.Repeat(" ", hangWidth(s))
	var lines []string
	line := s[:len(s)-len(strings.TrimLeft(s, " "))]
	empty := true
	for _, word := range strings.Fields(s) {
		switch {
		case empty:
			line += word
			empty = false
		case utf8.RuneCountInString(line)+1+utf8.RuneCountInString(word) <= n:
			line += " " + word
		default:
			lines = append(lines, line)
			line = hang + word
		}
	}
	return append(lines, line)
}

// hangWidth is where the text of a line starts after its indentation and
// list marker: 4 for "  - x", 3 for "2. x", 0 for plain prose.
func hangWidth(s string) int {
	rest := strings.TrimLeft(s, " ")
	w := len(s) - len(rest)
	marker := strings.TrimLeft(rest, "0123456789")
	switch {
	case len(marker) < len(rest) && strings.HasPrefix(marker, ". "):
		w += len(rest) - len(marker) + 2
	case len(rest) > 1 && strings.ContainsRune("-+~>*", rune(rest[0])) && rest[1] == ' ':
		w += 2
	}
	if w > 20 {
		return 0
	}
	return w
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
