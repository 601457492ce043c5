package models

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"citybrain/warehouse"
)

// TestProfileFullRefresh is a development aid, not a test: with
// CITYBRAIN_MODELS_PROFILE=DIR it builds (once) a lake of synthetic data at
// CITYBRAIN_MODELS_SCALE (default 1) under DIR and times full refreshes,
// printing each model's phases.
func TestProfileFullRefresh(t *testing.T) {
	dir := os.Getenv("CITYBRAIN_MODELS_PROFILE")
	if dir == "" {
		t.Skip("set CITYBRAIN_MODELS_PROFILE=DIR to profile a full refresh")
	}
	scale, _ := strconv.Atoi(os.Getenv("CITYBRAIN_MODELS_SCALE"))
	if scale == 0 {
		scale = 1
	}
	ctx := context.Background()
	dir = filepath.Join(dir, fmt.Sprintf("scale%d", scale))
	cfg := warehouse.DefaultConfig()
	cfg.Dir = filepath.Join(dir, "lake")
	fresh := false
	if _, err := os.Stat(cfg.Dir); err != nil {
		fresh = true
	}
	lake, err := warehouse.Open(ctx, cfg, "", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer lake.Close()
	if fresh {
		db, _ := sql.Open("duckdb", "")
		raw := filepath.Join(dir, "parquet")
		if err := GenerateSynthetic(ctx, db, raw, scale); err != nil {
			t.Fatal(err)
		}
		for _, tbl := range SyntheticTables() {
			f := filepath.Join(raw, strings.TrimPrefix(tbl, "raw.")+".parquet")
			if err := LoadRaw(ctx, lake, db, tbl, "SELECT * FROM read_parquet('"+f+"')"); err != nil {
				t.Fatal(err)
			}
		}
		db.Close()
		os.RemoveAll(raw)
	}
	p, err := Load(Embedded(), "risk_config.v1.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if out := os.Getenv("CITYBRAIN_MODELS_DUMP"); out != "" {
		// A DuckDB script of the source views and every model (a table
		// each, in order), for EXPLAIN ANALYZE outside the runner.
		var b strings.Builder
		b.WriteString("CREATE SCHEMA IF NOT EXISTS raw; CREATE SCHEMA IF NOT EXISTS marts;\n")
		for n := range p.Sources {
			tb, err := lake.Load(ctx, n)
			var q string
			if err == nil {
				q, err = lake.SnapshotSQL(ctx, tb, nil)
			} else {
				q, err = EmptySourceSQL(n, p.Sources[n].Columns)
			}
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "CREATE OR REPLACE VIEW %s AS %s;\n", n, q)
		}
		r := &Runner{Project: p}
		vars := r.vars(map[string]any{"as_of_date": SyntheticEnd})
		for _, n := range p.Order() {
			m := p.Models[n]
			q, err := r.render(m, vars, false)
			if err != nil {
				t.Fatal(err)
			}
			kind := "TABLE"
			if m.Config.Materialized == "view" {
				kind = "VIEW"
			}
			fmt.Fprintf(&b, "-- model %s\nCREATE OR REPLACE %s marts.%s AS %s;\n", n, kind, n, q)
		}
		if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	runs, _ := strconv.Atoi(os.Getenv("CITYBRAIN_MODELS_RUNS"))
	if runs == 0 {
		runs = 2
	}
	for range runs {
		r := &Runner{Lake: lake, Project: p, Progress: os.Stdout}
		start, cpu0 := time.Now(), profCPU()
		if _, err := r.Run(ctx, RunOptions{FullRefresh: true, Vars: map[string]any{"as_of_date": SyntheticEnd}}); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("total %s, CPU %s, load %s\n\n", time.Since(start).Round(time.Millisecond), (profCPU() - cpu0).Round(time.Millisecond), profLoad())
	}
}

func profCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func profLoad() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.Fields(string(b))[0]
}
