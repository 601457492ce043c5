package models

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"citybrain/warehouse"
)

// TestConcurrentRunsCommit runs the same models from two lake handles on one
// warehouse directory at once (as `citybrain models run` does while
// `citybrain serve` runs its own): the Iceberg commits of the same marts
// tables race, and the loser must retry rather than fail the model.
func TestConcurrentRunsCommit(t *testing.T) {
	tl := newTestLake(t)
	tl.load("raw.events", "SELECT 'e' || i AS id, DATE '2026-06-01' + CAST(i % 5 AS INTEGER) AS day, i AS v FROM range(200) r(i)")
	files := map[string]string{
		"models/sources.yml": "version: 2\nsources:\n  - name: raw\n    schema: raw\n    tables:\n      - name: events\n",
		"models/per_day.sql": "{{ config(materialized='incremental', unique_key='day', partition_by='day') }}\n" +
			"select day, count(*) as n, sum(v) as total from {{ source('raw', 'events') }} group by day",
	}
	for i := range 4 {
		files[fmt.Sprintf("models/t%d.sql", i)] = fmt.Sprintf("{{ config(materialized='table') }}\nselect day, n * %d as n from {{ ref('per_day') }}", i+1)
	}
	p, err := mapProject(t, files)
	if err != nil {
		t.Fatal(err)
	}
	// A second handle on the same directory: its own catalog and commit
	// locks, as another process has.
	cfg := warehouse.DefaultConfig()
	cfg.Dir = tl.lake.Dir()
	other, err := warehouse.Open(context.Background(), cfg, "", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	runners := []*Runner{tl.runner(p, nil), tl.runner(p, nil)}
	runners[1].Lake = other
	var retries sync.Map
	for i, r := range runners {
		r.onRetry = func(table string, attempt int) { retries.Store(fmt.Sprint(i, table, attempt), true) }
	}
	// Rounds until the commits have collided (at least four; they collide
	// in most rounds, both runners doing the same work at once).
	rounds := 0
	collided := func() bool {
		n := 0
		retries.Range(func(any, any) bool { n++; return true })
		return n > 0
	}
	for round := 0; round < 4 || (!collided() && round < 12); round++ {
		rounds++
		var wg sync.WaitGroup
		errs := make([]error, len(runners))
		for i, r := range runners {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = r.Run(context.Background(), RunOptions{FullRefresh: round%2 == 0})
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d, runner %d: %v", round, i, err)
			}
		}
	}
	n := 0
	retries.Range(func(any, any) bool { n++; return true })
	t.Logf("%d commit retries over %d rounds", n, rounds)
	if n == 0 {
		t.Fatalf("the two runs never raced in %d rounds: the retry was not exercised", rounds)
	}
	// Every table holds one run's complete result, not a mix or a loss.
	for _, q := range []string{"SELECT count(*) || '|' || sum(n) FROM marts.per_day", "SELECT count(*) || '|' || sum(n) FROM marts.t3"} {
		got := tl.query(q)
		want := map[string]string{"SELECT count(*) || '|' || sum(n) FROM marts.per_day": "5|200", "SELECT count(*) || '|' || sum(n) FROM marts.t3": "5|800"}[q]
		if len(got) != 1 || got[0] != want {
			t.Errorf("%s: %v, want %s", q, got, want)
		}
	}
	// Both runs of every round are recorded.
	if got := tl.query("SELECT count(DISTINCT run_id) FROM marts.model_runs"); len(got) != 1 || got[0] != fmt.Sprint(2*rounds) {
		t.Errorf("runs recorded: %v, want %d", got, 2*rounds)
	}
}
