package demo

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/mark3labs/mcp-go/mcp"
)

// The scripted agent's SQL. Each text is sent exactly as written.
const (
	revenueSQL = `SELECT c.plan, count(*) AS orders, sum(o.total) AS revenue
FROM orders o JOIN customers c ON c.id = o.customer_id
WHERE o.status IN ('paid', 'shipped', 'delivered')
GROUP BY c.plan
ORDER BY revenue DESC`

	piiSQL = `SELECT id, name, email, phone, plan FROM customers ORDER BY id LIMIT 3`

	taxIDSQL = `SELECT name, tax_id FROM customers WHERE id = 1`

	migrationSQL = `ALTER TABLE orders ADD COLUMN shipped_at timestamptz;
UPDATE orders SET shipped_at = created_at + interval '2 days' WHERE status = 'shipped'`

	shippedSQL = `SELECT status, count(*) AS orders, count(shipped_at) AS with_shipped_at
FROM orders GROUP BY status ORDER BY status`

	ticket       = "OPS-42"
	summary      = "Add shipped_at to orders, for the shipping dashboard"
	reviewerName = "demo-reviewer"
)

// tour is the scripted session: the agent's calls over MCP, then the
// reviewer's commands. Each step checks that airlock answered as the tour
// says it will, so a regression fails the demo instead of telling a story
// that is no longer true.
type tour struct {
	p      *printer
	agent  *agent
	binary string
	url    string // the admin's, for the audit log
	logins logins
	n      int
}

func (t *tour) step(title, explain string) {
	t.n++
	t.p.step(t.n, title, explain)
}

// call runs one tool call, shows it, and checks that it was refused or not
// as expected.
func (t *tour) call(ctx context.Context, wantRefusal bool, maxLines int, tool string, args ...arg) (*mcp.CallToolResult, error) {
	t.p.call(tool, args)
	res, err := t.agent.call(ctx, tool, args...)
	if err != nil {
		return nil, err
	}
	t.p.result(res, maxLines)
	switch {
	case wantRefusal && !res.IsError:
		return nil, fmt.Errorf("%s was not refused; airlock answered:\n%s", tool, resultText(res))
	case !wantRefusal && res.IsError:
		return nil, fmt.Errorf("%s failed:\n%s", tool, resultText(res))
	}
	return res, nil
}

func (t *tour) review(ctx context.Context, maxLines int, args ...string) (string, error) {
	out, err := reviewer(ctx, t.binary, t.logins.reviewer, args...)
	if err != nil {
		return "", err
	}
	t.p.command(args, out, maxLines)
	return out, nil
}

func (t *tour) play(ctx context.Context) error {
	steps := []func(context.Context) error{t.discover, t.ask, t.masked, t.refusals}
	for _, s := range steps {
		if err := s(ctx); err != nil {
			return err
		}
	}
	id, err := t.migrate(ctx)
	if err != nil {
		return err
	}
	if err := t.agentCredential(ctx, id); err != nil {
		return err
	}
	if err := t.reviewChange(ctx, id); err != nil {
		return err
	}
	return t.outcome(ctx, id)
}

func (t *tour) discover(ctx context.Context) error {
	t.step("Look around", "The agent sees only the tables its scope lists. "+
		"The database also holds internal_api_keys; for this agent it does not exist.")
	_, err := t.call(ctx, false, 8, "list_tables")
	return err
}

func (t *tour) ask(ctx context.Context) error {
	t.step("Ask a real question", "Reads are parsed by PostgreSQL's own parser, checked against the scope, "+
		"and run in a READ ONLY transaction that is always rolled back. "+
		"Rows come back fenced as untrusted data.")
	_, err := t.call(ctx, false, 12, "query_readonly", arg{"sql", revenueSQL})
	return err
}

func (t *tour) masked(ctx context.Context) error {
	t.step("PII stays masked", "The scope masks customers.email and customers.phone, and leaves tax_id out "+
		"altogether. A masked value is a keyed hash, the same on every call: equal values look equal, "+
		"but the real value never leaves the database.")
	res, err := t.call(ctx, false, 12, "query_readonly", arg{"sql", piiSQL})
	if err != nil {
		return err
	}
	if !strings.Contains(resultText(res), "masked:") {
		return fmt.Errorf("query_readonly returned no masked values:\n%s", resultText(res))
	}
	_, err = t.call(ctx, true, 6, "query_readonly", arg{"sql", taxIDSQL})
	return err
}

func (t *tour) refusals(ctx context.Context) error {
	t.step("What the agent cannot do", "There is no execute_sql tool. A write sent to the read tool, "+
		"the classic `COMMIT; …` escape, and a table outside the scope are refused before they reach "+
		"the database, with a reason the agent can act on.")
	for _, sql := range []string{
		"DROP TABLE orders",
		"COMMIT; DELETE FROM orders",
		"SELECT * FROM internal_api_keys",
	} {
		if _, err := t.call(ctx, true, 6, "query_readonly", arg{"sql", sql}); err != nil {
			return err
		}
	}
	return nil
}

// migrate dry-runs the migration, submits it, and returns its change id.
func (t *tour) migrate(ctx context.Context) (string, error) {
	t.step("Dry-run a migration", "migrate_dry_run runs the statements in a transaction that is rolled back, "+
		"and reports what they did: rows touched, locks taken, table rewrites, schema diff and a risk level.")
	// Reports are shown whole: what the reviewer will be shown is the point.
	if _, err := t.call(ctx, false, 0, "migrate_dry_run", arg{"sql", migrationSQL}); err != nil {
		return "", err
	}

	t.step("Submit it for review", "apply_migration_with_ticket needs a ticket matching the scope's pattern. "+
		"The change is recorded with the exact SQL and a fingerprint of its effects, "+
		"then held: nothing is permanent yet.")
	res, err := t.call(ctx, false, 0, "apply_migration_with_ticket",
		arg{"ticket", ticket}, arg{"summary", summary}, arg{"sql", migrationSQL})
	if err != nil {
		return "", err
	}
	var applied struct {
		ChangeID string `json:"change_id"`
		Status   string `json:"status"`
	}
	if err := decodeStructured(res, &applied); err != nil || applied.ChangeID == "" {
		return "", fmt.Errorf("apply_migration_with_ticket returned no change_id: %v\n%s", err, resultText(res))
	}
	if applied.Status != "pending" {
		return "", fmt.Errorf("change %s is %q, want pending", applied.ChangeID, applied.Status)
	}
	return applied.ChangeID, nil
}

func (t *tour) reviewChange(ctx context.Context, id string) error {
	t.step("A human reviews it", "The reviewer, in their own terminal, lists pending changes, inspects one, "+
		"and commits it. In replay mode the commit re-runs the stored SQL and keeps it only if its effects "+
		"match the dry run; otherwise it is rolled back as drifted.")
	out, err := t.review(ctx, 6, "pending")
	if err != nil {
		return err
	}
	if !strings.Contains(out, id) {
		return fmt.Errorf("airlock pending does not list change %s:\n%s", id, out)
	}
	if _, err := t.review(ctx, 0, "show", id); err != nil {
		return err
	}
	out, err = t.review(ctx, 4, "commit", id, "--reviewer", reviewerName)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(out, "committed") {
		return fmt.Errorf("airlock commit did not commit change %s:\n%s", id, out)
	}
	return nil
}

func (t *tour) outcome(ctx context.Context, id string) error {
	t.step("The agent sees the outcome", "get_change_status tells the agent what the reviewer decided, "+
		"and the new column is now real data it can read.")
	res, err := t.call(ctx, false, 6, "get_change_status", arg{"change_id", id})
	if err != nil {
		return err
	}
	var st struct {
		Status string `json:"status"`
	}
	if err := decodeStructured(res, &st); err != nil {
		return fmt.Errorf("get_change_status: %w", err)
	}
	if st.Status != "committed" {
		return errors.New("get_change_status: change is " + st.Status + ", want committed")
	}
	_, err = t.call(ctx, false, 12, "query_readonly", arg{"sql", shippedSQL})
	return err
}

const auditRow = "%-13s %-27s %-9s %s"

// auditTrail shows what airlock recorded of the session. It reads the log
// directly, as an operator would: the agent has no tool for it. It runs
// once the server has exited, which flushes its log.
func (t *tour) auditTrail(ctx context.Context) error {
	t.step("Everything is on the record", "Every tool call and review action, allowed or refused, "+
		"is in the airlock.audit_log table (and on the server's stderr as JSON lines).")
	conn, err := pgx.Connect(ctx, t.url)
	if err != nil {
		return fmt.Errorf("read the audit log: %w", err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `SELECT actor, tool, decision, coalesce(reason, '') FROM airlock.audit_log ORDER BY at, id`)
	if err != nil {
		return fmt.Errorf("read the audit log: %w", err)
	}
	var lines []string
	var actor, tool, decision, reason string
	_, err = pgx.ForEachRow(rows, []any{&actor, &tool, &decision, &reason}, func() error {
		if code, _, ok := strings.Cut(reason, ": "); ok && decision == "refused" {
			reason = code // a refusal's code says enough here
		}
		lines = append(lines, fmt.Sprintf(auditRow, clip(actor, 13), clip(tool, 27), clip(decision, 9), clip(oneLine(reason), 22)))
		return nil
	})
	if err != nil {
		return fmt.Errorf("read the audit log: %w", err)
	}
	t.p.printf("\n%sairlock.audit_log, read directly (the agent has no tool for it):\n\n", indent)
	t.p.printf("%s"+auditRow+"\n", indent+"  ", "ACTOR", "TOOL", "DECISION", "REASON")
	t.p.block(indent+"  ", indent+"  ", lines, 0)
	return nil
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// clip cuts s to n runes, marking the cut.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// agentCredential shows what the agent can do with the one database
// credential in its reach, its own login (in its MCP configuration, or the
// environment of an airlock it starts): with plain SQL nothing past the
// scope's read rights, and no way to approve its own change.
func (t *tour) agentCredential(ctx context.Context, id string) error {
	t.step("The agent's own credential", "A coding agent has a shell and reads files: assume it has its own "+
		"database login. PostgreSQL itself refuses it anything past reading the scope, masked columns stay "+
		"hashed, and the change it submitted can only be decided by a reviewer's login.")
	for _, sql := range []string{
		"DELETE FROM orders",
		"SELECT email FROM customers LIMIT 1",
		"SET ROLE airlock_demo_support_agent_write",
	} {
		t.p.printf("\n%sagent $ psql \"$AGENT_URL\" -c %s\n", indent, shellQuote(sql))
		msg, err := asAgent(ctx, t.logins.agent, sql)
		if err != nil {
			return err
		}
		t.p.block(indent+"  ", indent+"  ", []string{msg}, 0)
	}
	args := []string{"commit", id, "--reviewer", "agent"}
	t.p.printf("\n%sagent $ AIRLOCK_DATABASE_URL=\"$AGENT_URL\" airlock %s\n", indent, strings.Join(args, " "))
	out, err := reviewer(ctx, t.binary, t.logins.agent, args...)
	if err == nil {
		return fmt.Errorf("the agent's login committed change %s:\n%s", id, out)
	}
	lines := strings.Split(strings.TrimSpace(oneParagraph(err.Error())), "\n")
	t.p.block(indent+"  ", indent+"  ", lines, 3)
	return nil
}

// asAgent runs sql as the agent's login, in a transaction that is rolled
// back whatever happens, and returns PostgreSQL's refusal. A statement that
// runs is the demo's failure.
func asAgent(ctx context.Context, url, sql string) (string, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return "", fmt.Errorf("connect as the agent's login: %w", err)
	}
	defer conn.Close(context.Background())
	tx, err := conn.Begin(ctx)
	if err != nil {
		return "", err
	}
	defer tx.Rollback(context.Background())
	_, err = tx.Exec(ctx, sql)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return "", fmt.Errorf("the agent's login ran %q: %v", sql, err)
	}
	return "ERROR:  " + pe.Message, nil
}

// oneParagraph drops the "airlock commit: exit status 1" wrapper lines of a
// failed command, keeping what it printed.
func oneParagraph(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "airlock commit") && strings.Contains(l, "exit status") {
			continue
		}
		if l = strings.TrimSpace(l); l != "" {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}
