package review

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlock-dev/airlock/migrate"
	"github.com/airlock-dev/airlock/scopes"
	"github.com/airlock-dev/airlock/sqlguard"
)

func TestNewHolderByMode(t *testing.T) {
	for mode, want := range map[Mode]Holder{
		ModeReplay: &replayHolder{}, ModePrepared: &preparedHolder{}, ModeBranch: &branchHolder{}, "": &replayHolder{},
	} {
		got := NewHolder(HoldConfig{Scope: &scopes.Scope{Name: "support", Write: &scopes.Write{Mode: mode}}})
		if g, w := typeName(got), typeName(want); g != w {
			t.Errorf("mode %q: holder %s, want %s", mode, g, w)
		}
	}
}

func typeName(h Holder) string {
	switch h.(type) {
	case *replayHolder:
		return "replay"
	case *preparedHolder:
		return "prepared"
	case *branchHolder:
		return "branch"
	}
	return "?"
}

// holdOf is a change of scope support as the write tool submits it, and
// a runner that counts its runs.
func (e *env) holdOf(sql string, mode Mode, runs *int) *Hold {
	e.registerIfMissing("support", "postgres")
	opt := migrate.Options{Prepared: mode == ModePrepared}
	return &Hold{
		Change: &Change{Ticket: "OPS-1", Summary: "test change", SQL: sql, Scope: "support", Session: "session-1",
			Mode: mode, TTL: time.Hour},
		Plan:    checkPlan(e.t, sql),
		Options: opt,
		Run: func(ctx context.Context, pool *pgxpool.Pool, plan *sqlguard.MigrationPlan, end migrate.Ending, arg migrate.RunArg, _ string) (*migrate.Report, error) {
			*runs++
			conn, err := pool.Acquire(ctx)
			if err != nil {
				return nil, err
			}
			defer conn.Release()
			return migrate.Run(ctx, conn.Conn(), plan, opt, end, arg)
		},
	}
}

func (e *env) holder(mode Mode) Holder {
	return NewHolder(HoldConfig{Store: e.store, Pool: e.pool, Scope: &scopes.Scope{Name: "support", Write: &scopes.Write{Mode: mode}}})
}

func TestReplayHoldRecordsPending(t *testing.T) {
	e := newEnv(t)
	var runs int
	h := e.holdOf("UPDATE orders SET notes = 'held' WHERE id = 1", ModeReplay, &runs)
	rep, err := e.holder(ModeReplay).Hold(e.ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	if runs != 1 || rep == nil || h.Change.ID == "" || h.Change.GID != "" {
		t.Fatalf("runs %d, report %v, id %q, gid %q", runs, rep, h.Change.ID, h.Change.GID)
	}
	if s := e.status(h.Change.ID); s != StatusPending {
		t.Errorf("status %s, want pending", s)
	}
	if n := e.queryInt("SELECT count(*) FROM orders WHERE notes = 'held'"); n != 0 {
		t.Errorf("the replay run left %d rows changed", n)
	}
}

// A change over the pending limits is refused before it runs.
func TestHoldLimitsBeforeRun(t *testing.T) {
	e := newEnv(t)
	e.record("UPDATE orders SET notes = 'x' WHERE id = 1", "support", ModeReplay)
	for _, mode := range []Mode{ModeReplay, ModePrepared, ModeBranch} {
		var runs int
		h := e.holdOf("UPDATE orders SET notes = 'y' WHERE id = 2", mode, &runs)
		h.Change.Limits = Limits{PerScope: 1}
		_, err := e.holder(mode).Hold(e.ctx, h)
		var tooMany *TooManyPendingError
		if !errors.As(err, &tooMany) || runs != 0 {
			t.Errorf("%s: err %v after %d runs, want *TooManyPendingError before any", mode, err, runs)
		}
	}
}

// A prepared change that cannot be recorded leaves no prepared
// transaction behind.
func TestPreparedHoldRollsBackUnrecorded(t *testing.T) {
	e := newEnv(t)
	var runs int
	h := e.holdOf("UPDATE orders SET notes = 'y' WHERE id = 2", ModePrepared, &runs)
	h.Change.Ticket = " " // Record refuses it
	if _, err := e.holder(ModePrepared).Hold(e.ctx, h); err == nil {
		t.Fatal("held a change Record refuses")
	}
	if runs != 1 || h.Change.GID == "" {
		t.Fatalf("runs %d, gid %q: the change was not prepared", runs, h.Change.GID)
	}
	if e.prepared(h.Change.GID) {
		t.Error("the unrecorded prepared transaction is still there")
	}
}
