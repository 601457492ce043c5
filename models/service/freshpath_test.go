package service

import (
	"errors"
	"testing"
	"time"

	"citybrain/internal/app"
	"citybrain/internal/freshness"
	"citybrain/models"
)

// TestRunnerFreshness: an input commit makes the model runner pending until
// a run that started after it; a commit during a run leaves it pending; a
// failed run is reported with its error.
func TestRunnerFreshness(t *testing.T) {
	reg := freshness.New(time.Now, freshness.DefaultThresholds())
	s := &Service{rt: &app.Runtime{Fresh: reg}}
	t0 := time.Now().Add(-time.Minute)
	s.inputCommitted(t0)
	if row, _ := reg.Get(FreshPath); row.CaughtUp || row.LagS < 59 {
		t.Fatalf("after an input commit: %+v", row)
	}
	// A run starts (inputsAt reset), an input is committed during it, the run ends.
	s.mu.Lock()
	s.inputsAt = time.Time{}
	s.mu.Unlock()
	during := time.Now()
	s.inputCommitted(during)
	s.reportFresh(&models.RunReport{Started: t0, Finished: time.Now(), Models: []models.ModelResult{{Model: "m", Snapshot: 7}}}, nil)
	row, _ := reg.Get(FreshPath)
	if row.CaughtUp || !row.PendingSince.Equal(during) || row.Snapshot != 7 {
		t.Fatalf("input committed during the run: %+v", row)
	}
	// The next run covers it.
	s.mu.Lock()
	s.inputsAt = time.Time{}
	s.mu.Unlock()
	s.reportFresh(&models.RunReport{Started: time.Now(), Finished: time.Now()}, nil)
	if row, _ := reg.Get(FreshPath); !row.CaughtUp || row.Err != "" {
		t.Fatalf("after a run: %+v", row)
	}
	s.reportFresh(nil, errors.New("model failed"))
	if row, _ := reg.Get(FreshPath); row.Err == "" || row.Level != "warn" {
		t.Fatalf("failed run: %+v", row)
	}
}
