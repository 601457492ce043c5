package pgwire

import (
	"github.com/jackc/pgx/v5/pgtype"
	"log/slog"
	"testing"
)

type tw struct{ t *testing.T }

func (w tw) Write(b []byte) (int, error) { w.t.Log(string(b)); return len(b), nil }

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tw{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type pgtypeNumeric = pgtype.Numeric
