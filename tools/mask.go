package tools

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// maskPrefix marks a masked value in results.
const maskPrefix = "masked:"

// appendMask appends, as a JSON string, a keyed hash of a value's text in
// place of the value: stable for a scope, so equality and grouping still
// work on the returned values, and not reversible without the key. NULL
// stays null.
func appendMask(dst, key, raw []byte) []byte {
	if raw == nil {
		return append(dst, "null"...)
	}
	m := hmac.New(sha256.New, key)
	m.Write(raw)
	var sum [sha256.Size]byte
	dst = append(dst, '"')
	dst = append(dst, maskPrefix...)
	dst = hex.AppendEncode(dst, m.Sum(sum[:0])[:12])
	return append(dst, '"')
}

// LoadMaskKey returns the scope's masking key, creating it on first use.
// The key lives in airlock.mask_keys so that hashes stay stable across
// restarts and across servers sharing the database.
func LoadMaskKey(ctx context.Context, pool *pgxpool.Pool, scope string) ([]byte, error) {
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("mask key: %w", err)
	}
	var key []byte
	err := pool.QueryRow(ctx, `
		WITH ins AS (
			INSERT INTO airlock.mask_keys (scope, key) VALUES ($1, $2)
			ON CONFLICT (scope) DO NOTHING RETURNING key)
		SELECT key FROM ins
		UNION ALL SELECT key FROM airlock.mask_keys WHERE scope = $1
		LIMIT 1`, scope, fresh).Scan(&key)
	if err != nil {
		return nil, fmt.Errorf("mask key: %w", err)
	}
	return key, nil
}
