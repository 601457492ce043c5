package models

import (
	"context"
	"database/sql"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
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
	db, _ := sql.Open("duckdb", "")
	cfg := warehouse.DefaultConfig()
	lake, err := warehouse.Open(ctx, cfg, filepath.Join(dir, "data"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "loaded")); err != nil {
		if err := GenerateSynthetic(ctx, db, filepath.Join(dir, "pq"), 1); err != nil {
			t.Fatal(err)
		}
		for _, table := range SyntheticTables() {
			f := filepath.Join(dir, "pq", strings.TrimPrefix(table, "raw.")+".parquet")
			if err := LoadRaw(ctx, lake, db, table, "SELECT * FROM read_parquet('"+f+"')"); err != nil {
				t.Fatal(err)
			}
		}
		os.WriteFile(filepath.Join(dir, "loaded"), nil, 0o644)
	}
	p, _ := Load(Embedded(), "risk_config.v1.yaml")
	r := &Runner{Lake: lake, Project: p, Progress: os.Stdout, Threads: 2}
	for range 2 {
		st := time.Now()
		var ru0, ru1 syscall.Rusage
		syscall.Getrusage(0, &ru0)
		if _, err := r.Run(ctx, RunOptions{FullRefresh: true, Vars: map[string]any{"as_of_date": SyntheticEnd}}); err != nil {
			t.Fatal(err)
		}
		syscall.Getrusage(0, &ru1)
		cpu := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano())
		t.Log("wall", time.Since(st), "cpu", cpu)
	}
}
