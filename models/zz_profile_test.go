package models

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"citybrain/warehouse"
)

func TestZZProfile(t *testing.T) {
	dir := os.Getenv("CB_PROFILE_DIR")
	if dir == "" {
		t.Skip()
	}
	ctx := context.Background()
	lake, err := warehouse.Open(ctx, warehouse.DefaultConfig(), filepath.Join(dir, "data"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := Load(Embedded(), "risk_config.v1.yaml")
	r := &Runner{Lake: lake, Project: p}
	for range 3 {
		st := time.Now()
		var ru0, ru1 syscall.Rusage
		syscall.Getrusage(0, &ru0)
		if _, err := r.Run(ctx, RunOptions{FullRefresh: true, Vars: map[string]any{"as_of_date": SyntheticEnd}}); err != nil {
			t.Fatal(err)
		}
		syscall.Getrusage(0, &ru1)
		cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
		t.Log("wall", time.Since(st), "cpu", cpu)
	}
}
