package review

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// Announcement is one NOTIFY on EventsChannel: which row changed. It is a
// hint, never evidence: any login can NOTIFY, so a listener reads the row
// it names before it tells anyone anything.
type Announcement struct {
	// Kind is "change", "branch" or "approval".
	Kind string `json:"kind"`
	ID   string `json:"id"`
	// Status is the row's new status; for an approval, the kind of
	// subject approved ("change" or "branch").
	Status string `json:"status"`
}

// Listen calls fn with every announcement on EventsChannel until ctx
// ends. It holds one connection of its own (from connect), LISTENs, and
// reconnects with backoff when the connection is lost; what is announced
// while it is disconnected is missed, and said so in the log.
func Listen(ctx context.Context, connect func(context.Context) (*pgx.Conn, error), logger *slog.Logger, fn func(Announcement)) {
	backoff := time.Second
	for ctx.Err() == nil {
		err := listenOnce(ctx, connect, fn, func() { backoff = time.Second })
		if ctx.Err() != nil {
			return
		}
		logger.Warn("notifications: lost the database connection they listen on; reconnecting (what happens meanwhile is not notified)", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Minute)
	}
}

func listenOnce(ctx context.Context, connect func(context.Context) (*pgx.Conn, error), fn func(Announcement), connected func()) error {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	conn, err := connect(cctx)
	cancel()
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+EventsChannel); err != nil {
		return err
	}
	connected()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		var a Announcement
		if json.Unmarshal([]byte(n.Payload), &a) != nil || a.ID == "" {
			continue
		}
		fn(a)
	}
}
