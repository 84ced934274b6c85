package roles

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/airlock-dev/airlock/review"
)

// TestMaskedView: a masked column is read through the scope's view only,
// with the row filter applied, hashed exactly as HMAC-SHA-256 of the
// value's text under the scope's key (the key an older airlock kept in
// airlock.mask_keys, so hashes handed out before stay the same).
func TestMaskedView(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := review.EnsureSchema(e.ctx, e.pool); err != nil {
		t.Fatal(err)
	}
	s := e.scope(`{"tables": {"public.customers": {"columns": ["id", "tenant_id", "email"], "mask": ["email"], "row_filter": "tenant_id = 2"}}}`, "")
	key := []byte("0123456789abcdef0123456789abcdef")
	e.exec("INSERT INTO airlock.mask_keys (scope, key) VALUES ('" + s.Name + "', '\\x" + hex.EncodeToString(key) + "')")
	e.applyConverged(s, Options{})
	view := ident(s.MaskSchema()) + `."public.customers"`

	rows, err := e.pool.Query(e.ctx, "SELECT id, email FROM public.customers WHERE tenant_id = 2 AND email IS NOT NULL ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	want := map[int64]string{}
	for rows.Next() {
		var id int64
		var email string
		if err := rows.Scan(&id, &email); err != nil {
			t.Fatal(err)
		}
		m := hmac.New(sha256.New, key)
		m.Write([]byte(email))
		want[id] = "masked:" + hex.EncodeToString(m.Sum(nil)[:12])
	}
	rows.Close()
	if len(want) == 0 {
		t.Fatal("no tenant-2 emails in the seed")
	}

	tx, err := e.pool.Begin(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(e.ctx)
	if _, err := tx.Exec(e.ctx, "SET LOCAL ROLE "+ident(s.ReadRole())); err != nil {
		t.Fatal(err)
	}
	got := map[int64]string{}
	r2, err := tx.Query(e.ctx, "SELECT id, email FROM "+view+" WHERE email IS NOT NULL")
	if err != nil {
		t.Fatal(err)
	}
	for r2.Next() {
		var id int64
		var email string
		if err := r2.Scan(&id, &email); err != nil {
			t.Fatal(err)
		}
		got[id] = email
	}
	r2.Close()
	if len(got) != len(want) {
		t.Fatalf("the view shows %d rows, want the %d of tenant 2", len(got), len(want))
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("id %d: %q, want %q", id, got[id], w)
		}
	}
}
