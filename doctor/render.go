package doctor

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Render writes checks for a terminal: one line per check, status and name
// in aligned columns, and under every check that is not OK an indented
// "fix:" line. It returns the first write error.
func Render(w io.Writer, checks []Check) error {
	nameWidth := 0
	for _, c := range checks {
		nameWidth = max(nameWidth, len(c.Name))
	}
	const statusWidth = len("WARN")
	indent := strings.Repeat(" ", statusWidth+2+nameWidth+2)
	bw := bufio.NewWriter(w)
	for _, c := range checks {
		fmt.Fprintf(bw, "%-*s  %-*s  %s\n", statusWidth, c.Status, nameWidth, c.Name, c.Detail)
		if c.Status != OK && c.Fix != "" {
			fmt.Fprintf(bw, "%sfix: %s\n", indent, c.Fix)
		}
	}
	return bw.Flush()
}

// Summary counts the checks by status, e.g. "2 failed, 1 warning, 5 ok".
func Summary(checks []Check) string {
	var ok, warn, fail int
	for _, c := range checks {
		switch c.Status {
		case OK:
			ok++
		case WARN:
			warn++
		case FAIL:
			fail++
		}
	}
	return fmt.Sprintf("%d failed, %d %s, %d ok", fail, warn, plural(warn, "warning", "warnings"), ok)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
