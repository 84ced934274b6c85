package server_test

import (
	"context"
	"testing"
)

func TestAuditLogRecordsEveryCall(t *testing.T) {
	h := newHarness(t, "support.json", nil)
	h.query("SELECT id FROM orders WHERE id = $1", 1)
	h.query("SELECT token FROM secrets")
	h.call("list_tables", map[string]any{})
	h.srv.Close() // flushes the background writer

	rows, err := h.pool.Query(context.Background(), `
		SELECT tool, decision, coalesce(sql, ''), coalesce(fingerprint, ''), coalesce(reason, ''), rows, scope, session
		FROM airlock.audit_log ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	type entry struct {
		tool, decision, sql, fp, reason, scope, session string
		rows                                            int64
	}
	var got []entry
	for rows.Next() {
		var e entry
		if err := rows.Scan(&e.tool, &e.decision, &e.sql, &e.fp, &e.reason, &e.rows, &e.scope, &e.session); err != nil {
			t.Fatal(err)
		}
		got = append(got, e)
	}
	if len(got) != 3 {
		t.Fatalf("audit rows = %d, want 3: %+v", len(got), got)
	}
	if g := got[0]; g.tool != "query_readonly" || g.decision != "allowed" || g.rows != 1 || g.fp == "" || g.scope != "support" || g.session == "" {
		t.Errorf("allowed call audited as %+v", g)
	}
	if g := got[1]; g.decision != "refused" || g.reason == "" || g.sql != "SELECT token FROM secrets" {
		t.Errorf("refused call audited as %+v", g)
	}
	if g := got[2]; g.tool != "list_tables" || g.decision != "allowed" {
		t.Errorf("list_tables audited as %+v", g)
	}
}
