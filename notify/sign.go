package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

const (
	headerEvent     = "X-Airlock-Event"
	headerDelivery  = "X-Airlock-Delivery"
	headerTimestamp = "X-Airlock-Timestamp"
	headerSignature = "X-Airlock-Signature"

	// signaturePrefix names the algorithm, so that a receiver can tell a
	// future scheme from a forgery.
	signaturePrefix = "sha256="
)

var (
	errNoSecret     = errors.New("no secret")
	errBadTimestamp = errors.New("malformed timestamp")
	errBadSignature = errors.New("malformed signature")
	errMismatch     = errors.New("signature does not match")
	errStale        = errors.New("timestamp outside tolerance")
)

// sign is the X-Airlock-Signature of body sent at timestamp ts. The
// timestamp is inside the MAC so that a captured delivery cannot be
// replayed later under a fresh timestamp.
func sign(secret []byte, ts string, body []byte) string {
	return signaturePrefix + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a delivery as a receiver gets it: timestamp and signature
// are the X-Airlock-Timestamp and X-Airlock-Signature headers, body the
// raw request body (before any JSON decoding), now the receiver's clock.
// It accepts only a signature made with secret over exactly timestamp and
// body, and a timestamp no further than tolerance from now either way:
// that bounds how long a captured delivery can be replayed. Receivers
// should still drop repeated X-Airlock-Delivery ids.
func Verify(secret []byte, timestamp, signature string, body []byte, now time.Time, tolerance time.Duration) error {
	if len(secret) == 0 {
		return fmt.Errorf("verify airlock signature: %w", errNoSecret)
	}
	secs, err := strconv.ParseInt(strings.TrimSpace(timestamp), 10, 64)
	if err != nil {
		return fmt.Errorf("verify airlock signature: %w %q: want Unix seconds", errBadTimestamp, timestamp)
	}
	hexSig, ok := strings.CutPrefix(strings.TrimSpace(signature), signaturePrefix)
	if !ok {
		return fmt.Errorf("verify airlock signature: %w: want %q followed by hex", errBadSignature, signaturePrefix)
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return fmt.Errorf("verify airlock signature: %w: %w", errBadSignature, err)
	}
	// hmac.Equal takes the same time wherever the first difference is, so
	// a forger learns nothing from how fast a guess is refused.
	if !hmac.Equal(got, mac(secret, timestamp, body)) {
		return fmt.Errorf("verify airlock signature: %w (wrong secret, or timestamp or body altered)", errMismatch)
	}
	skew := now.Sub(time.Unix(secs, 0))
	switch {
	case skew > tolerance:
		return fmt.Errorf("verify airlock signature: %w: %s old, tolerance %s", errStale, skew.Round(time.Second), tolerance)
	case skew < -tolerance:
		return fmt.Errorf("verify airlock signature: %w: %s in the future, tolerance %s", errStale, (-skew).Round(time.Second), tolerance)
	}
	return nil
}
