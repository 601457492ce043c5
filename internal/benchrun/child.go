package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"citybrain/internal/benchrun/benchdata"
	"citybrain/internal/broker"
	"citybrain/pipelines/lakewriter"
	"citybrain/warehouse"
)

// childResult is what the writer process prints as its last stdout line.
type childResult struct {
	Rows         int64   `json:"rows"`
	WallS        float64 `json:"wall_s"`
	UserS        float64 `json:"user_s"`
	SysS         float64 `json:"sys_s"`
	PeakRSSBytes int64   `json:"peak_rss_bytes"`
	Commits      int64   `json:"commits"`
}

func rusage() (user, sys time.Duration, maxrss int64) {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano()), ru.Maxrss * 1024
}

// runChild opens the lake in dataDir and runs one lake writer over
// raw.bench_signal until it has committed everything in the topic. Wall
// and CPU time cover the writer's Run only (lake open excluded).
func runChild(ctx context.Context, dataDir, bootstrap string, rows int, cpuprof, memprof string) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	lake, err := warehouse.Open(ctx, warehouse.DefaultConfig(), dataDir, log)
	if err != nil {
		return err
	}
	defer lake.Close()
	s, err := benchdata.Schema()
	if err != nil {
		return err
	}
	client := broker.NewClient([]string{bootstrap}, broker.DefaultConfig())
	w := lakewriter.New(lakewriter.DefaultConfig(), lake, client, benchdata.Source, s, log)
	defer w.Close()
	w.StopAtEnd = true

	if cpuprof != "" {
		f, err := os.Create(cpuprof)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	done := make(chan struct{})
	start := time.Now()
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				_, _, rss := rusage()
				fmt.Fprintf(os.Stderr, "%s writer: %.0fs, %d/%d rows committed in %d commits, heap %.0f MiB, peak RSS %.0f MiB\n",
					time.Now().Format("15:04:05"), time.Since(start).Seconds(), w.Stats.Rows.Load(), rows, w.Stats.Commits.Load(),
					float64(ms.HeapAlloc)/(1<<20), float64(rss)/(1<<20))
			}
		}
	}()
	u0, s0, _ := rusage()
	err = w.Run(ctx)
	wall := time.Since(start)
	u1, s1, rss := rusage()
	close(done)
	if err != nil {
		return err
	}
	if memprof != "" {
		f, err := os.Create(memprof)
		if err != nil {
			return err
		}
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			return err
		}
		f.Close()
	}
	if d := w.Stats.Rejects.Load() + w.Stats.Duplicates.Load(); d > 0 {
		return fmt.Errorf("%d rejects and %d duplicates, want none", w.Stats.Rejects.Load(), w.Stats.Duplicates.Load())
	}
	out, _ := json.Marshal(childResult{Rows: w.Stats.Rows.Load(), WallS: wall.Seconds(),
		UserS: (u1 - u0).Seconds(), SysS: (s1 - s0).Seconds(), PeakRSSBytes: rss, Commits: w.Stats.Commits.Load()})
	fmt.Println(string(out))
	return nil
}
