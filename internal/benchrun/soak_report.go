package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// pathStats is one path's lag after catch-up.
type pathStats struct {
	Path string  `json:"path"`
	P50  float64 `json:"p50_s"`
	P99  float64 `json:"p99_s"`
	Max  float64 `json:"max_s"`
	N    int     `json:"samples"`
}

// finish computes each transition's freshness and the run's summary.
func (r *soakRun) finish(samples []soakSample, ready time.Time) *soakRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	cmdline := "go run ./internal/benchrun " + strings.Join(os.Args[1:], " ")
	rec := &soakRecord{Machine: machine(), Command: cmdline, Speed: *soakSpeed, Hogs: *soakHogs, BackfillDay: *soakBackfill,
		Interval: soakInterval.Seconds(), Start: r.start, Samples: samples, CatchUpS: -1, Summary: map[string]any{}}
	if !ready.IsZero() {
		rec.ReadyS = ready.Sub(r.start).Seconds()
	}
	if !r.catchUp.IsZero() {
		rec.CatchUpS = r.catchUp.Sub(r.start).Seconds()
	}
	r.clock.mu.Lock()
	rec.LiveStart = r.clock.live
	r.clock.mu.Unlock()
	fresh := func(e, at time.Time) float64 {
		if at.IsZero() || e.IsZero() {
			return 0
		}
		w, ok := r.clock.wallOf(e)
		if !ok {
			return 0
		}
		return math.Max(at.Sub(w).Seconds(), 0)
	}
	for _, tr := range r.transitions {
		tr.APIFreshS = fresh(tr.EventTime, tr.API)
		tr.CockpitFreshS = fresh(tr.EventTime, tr.Cockpit)
		tr.PGFreshS = fresh(tr.EventTime, tr.PG)
		made := tr.TransitionAt
		if made.IsZero() {
			made = tr.PG
		}
		tr.AfterCatchUp = !r.catchUp.IsZero() && made.After(r.catchUp)
		rec.Transitions = append(rec.Transitions, tr)
	}
	sort.Slice(rec.Transitions, func(i, j int) bool { return rec.Transitions[i].Seq < rec.Transitions[j].Seq })
	return rec
}

// after are the samples after catch-up (all of them when the engine never
// caught up; caught reports which).
func (rec *soakRecord) after() (out []soakSample, caught bool) {
	if rec.CatchUpS < 0 {
		return rec.Samples, false
	}
	for _, s := range rec.Samples {
		if s.T >= rec.CatchUpS {
			out = append(out, s)
		}
	}
	return out, true
}

// pathStats is every path's lag after catch-up, worst p99 first.
func (rec *soakRecord) pathStats() []pathStats {
	ss, _ := rec.after()
	by := map[string][]float64{}
	for _, s := range ss {
		for k, p := range s.Paths {
			by[k] = append(by[k], p.LagS)
		}
	}
	var out []pathStats
	for k, xs := range by {
		out = append(out, pathStats{Path: k, P50: percentile(xs, 50), P99: percentile(xs, 99), Max: percentile(xs, 100), N: len(xs)})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].P99 != out[j].P99 {
			return out[i].P99 > out[j].P99
		}
		return out[i].Path < out[j].Path
	})
	return out
}

// transitionFresh is the after-catch-up freshness of one arrival kind.
func (rec *soakRecord) transitionFresh(kind string) []float64 {
	var xs []float64
	for _, tr := range rec.Transitions {
		if !tr.AfterCatchUp && rec.CatchUpS >= 0 {
			continue
		}
		v := map[string]float64{"api": tr.APIFreshS, "cockpit": tr.CockpitFreshS, "pgwire": tr.PGFreshS}[kind]
		if v > 0 {
			xs = append(xs, v)
		}
	}
	return xs
}

// rssGrowth compares the RSS at the start and the end of the second half of
// the window after catch-up (medians of 3 samples), and fits a line.
func (rec *soakRecord) rssGrowth() (growth, first, last, slopePer10Min float64, n int) {
	ss, _ := rec.after()
	if len(ss) < 6 {
		return math.NaN(), 0, 0, 0, len(ss)
	}
	mid := (ss[0].T + ss[len(ss)-1].T) / 2
	var half []soakSample
	for _, s := range ss {
		if s.T >= mid && s.RSSMB > 0 {
			half = append(half, s)
		}
	}
	if len(half) < 6 {
		return math.NaN(), 0, 0, 0, len(half)
	}
	rss := func(xs []soakSample) []float64 {
		var out []float64
		for _, s := range xs {
			out = append(out, s.RSSMB)
		}
		return out
	}
	first, last = percentile50(rss(half[:3])), percentile50(rss(half[len(half)-3:]))
	// least squares, MiB per 10 min
	var sx, sy, sxx, sxy float64
	for _, s := range half {
		x := s.T / 600
		sx, sy, sxx, sxy = sx+x, sy+s.RSSMB, sxx+x*x, sxy+x*s.RSSMB
	}
	k := float64(len(half))
	if d := k*sxx - sx*sx; d != 0 {
		slopePer10Min = (k*sxy - sx*sy) / d
	}
	return (last - first) / first, first, last, slopePer10Min, len(half)
}

// memorySplit is each memory gauge serve reports (every DuckDB database,
// Go's memory, the resident set) at the start and end of the second half
// after catch-up, largest change first; "" without the gauges.
func (rec *soakRecord) memorySplit() string {
	ss, _ := rec.after()
	if len(ss) < 6 {
		return ""
	}
	mid := (ss[0].T + ss[len(ss)-1].T) / 2
	var half []soakSample
	for _, s := range ss {
		if s.T >= mid {
			half = append(half, s)
		}
	}
	if len(half) < 6 {
		return ""
	}
	names := map[string]string{}
	for k := range half[len(half)-1].Summaries {
		switch {
		case strings.HasPrefix(k, "citybrain_duckdb_memory_bytes{"):
			_, labels, _, _ := parsePromLine(k + " 0")
			names[k] = "DuckDB " + labels["db"]
		case k == "citybrain_go_memory_bytes":
			names[k] = "Go runtime"
		case k == "citybrain_process_resident_bytes":
			names[k] = "process RSS"
		}
	}
	type change struct {
		name        string
		first, last float64
	}
	var cs []change
	for k, name := range names {
		at := func(xs []soakSample) float64 {
			var v []float64
			for _, s := range xs {
				if x, ok := s.Summaries[k]; ok {
					v = append(v, x/(1<<20))
				}
			}
			return percentile50(v)
		}
		cs = append(cs, change{name, at(half[:3]), at(half[len(half)-3:])})
	}
	sort.Slice(cs, func(i, j int) bool { return math.Abs(cs[i].last-cs[i].first) > math.Abs(cs[j].last-cs[j].first) })
	var parts []string
	for _, c := range cs {
		parts = append(parts, fmt.Sprintf("%s %.0f → %.0f", c.name, c.first, c.last))
	}
	return strings.Join(parts, "; ")
}

// report writes bench/soak.json, the chart, and returns the suite's results.
func (r *soakRun) report(rec *soakRecord) []Result {
	ss, caught := rec.after()
	window := "after catch-up"
	if !caught {
		window = "over the whole run: the warning engine NEVER caught up"
	}
	var out []Result
	add := func(name, unit string, fig float64, note string, target float64, targetName string) {
		res := Result{Name: "soak/" + name, Status: "ok", Figure: fig, Unit: unit, Rows: int64(len(ss)), Reason: note}
		if math.IsNaN(fig) {
			res.Status, res.Figure = "skipped", 0
		}
		if target > 0 {
			res.Anchor = &Anchor{Name: targetName, Figure: target, Unit: unit}
			if res.Status == "ok" {
				res.Anchor.Ratio = fig / target
			}
		}
		out = append(out, res)
	}
	goal := func(ok bool, what string) string {
		if ok {
			return "meets " + what
		}
		return "MISSES " + what
	}
	load := []float64{}
	cpu := []float64{}
	for _, s := range ss {
		load = append(load, s.Load1)
		if s.CPUCores > 0 {
			cpu = append(cpu, s.CPUCores)
		}
	}
	runNote := fmt.Sprintf("speed %.0f, %d hog(s), backfill %d d, Ready %.0f s, samples %d every %.0f s, load avg median %.1f",
		rec.Speed, rec.Hogs, rec.BackfillDay, rec.ReadyS, len(rec.Samples), rec.Interval, percentile50(load))
	cu := math.NaN()
	if rec.CatchUpS >= 0 {
		cu = rec.CatchUpS
	}
	add("catch_up", "s", cu, "serve start → warning engine caught_up (replay of the backfill done); "+runNote, 0, "")

	ps := rec.pathStats()
	zero := 0
	var worst pathStats
	worst.P99 = -1
	for _, p := range ps {
		// The marts (models/…) are rebuilt minutes apart by design: judged
		// against their own warn threshold, not the live path's 10 s.
		if strings.HasPrefix(p.Path, "models/") {
			add("freshness_p99/"+p.Path, "s", p.P99, fmt.Sprintf("lag_seconds %s: p50 %.1f s, max %.1f s, %d samples; marts are rebuilt minutes apart (models.debounce), %s",
				window, p.P50, p.Max, p.N, goal(p.P99 <= soakModelsWarnS, "their warn threshold (10 min)")), soakModelsWarnS, "models warn threshold")
			continue
		}
		if p.P99 > worst.P99 {
			worst = p
		}
		if p.Max == 0 {
			zero++
			continue
		}
		add("freshness_p99/"+p.Path, "s", p.P99, fmt.Sprintf("lag_seconds %s: p50 %.1f s, max %.1f s, %d samples", window, p.P50, p.Max, p.N),
			soakGoalFreshS, "issue goal p99")
	}
	if worst.P99 >= 0 {
		add("freshness_p99_worst", "s", worst.P99, fmt.Sprintf("worst live path %s (p50 %.1f s) %s; %d of %d paths had no lag at any sample; %s",
			worst.Path, worst.P50, window, zero, len(ps), goal(worst.P99 <= soakGoalFreshS, "p99 ≤ 10 s")), soakGoalFreshS, "issue goal p99")
	} else {
		add("freshness_p99_worst", "s", math.NaN(), "no freshness paths in /metrics", soakGoalFreshS, "issue goal p99")
	}
	rec.Summary["paths"] = ps

	for _, k := range []struct{ kind, what string }{
		{"api", "GET /api/warnings/stream (engine state)"},
		{"cockpit", "cockpit SSE /api/dash/live (after the marts.warnings commit)"},
		{"pgwire", "pgwire poll every 2 s of marts.warnings (upper bound: + up to 2 s)"},
	} {
		xs := rec.transitionFresh(k.kind)
		p99 := percentile(xs, 99)
		add("warning_freshness_p99/"+k.kind, "s", p99, fmt.Sprintf("simulated data time → transition visible on %s, %d transitions %s: p50 %.1f s, max %.1f s; %s",
			k.what, len(xs), window, percentile(xs, 50), percentile(xs, 100), goal(p99 <= soakGoalFreshS, "p99 ≤ 10 s")), soakGoalFreshS, "issue goal p99")
		rec.Summary["warning_freshness_"+k.kind] = map[string]float64{"p50": nz(percentile(xs, 50)), "p99": nz(p99), "max": nz(percentile(xs, 100)), "n": float64(len(xs))}
	}
	var eng []float64
	for _, s := range ss {
		if s.EngineAgeS > 0 {
			eng = append(eng, s.EngineAgeS)
		}
	}
	add("engine_data_age_p99", "s", percentile(eng, 99), fmt.Sprintf("sampled: wall seconds since the simulated clock was at the engine's event_time (GET /api/warnings), %s: p50 %.1f s (includes the simulator's 2 s tick)",
		window, percentile(eng, 50)), soakGoalFreshS, "issue goal p99")

	g, first, last, slope, n := rec.rssGrowth()
	add("rss_growth_second_half", "%", g*100, fmt.Sprintf("serve RSS %.0f → %.0f MiB over the second half %s (%d samples, medians of 3), fit %+.1f MiB per 10 min; %s",
		first, last, window, n, slope, goal(g <= soakGoalRSS, "≤ 10 %")), soakGoalRSS*100, "issue goal")
	if split := rec.memorySplit(); split != "" {
		add("rss_split", "MiB", last-first, "where the second half's RSS change is (/metrics memory gauges, medians of 3 samples, start → end): "+split, 0, "")
	}
	var rss []float64
	for _, s := range rec.Samples {
		if s.RSSMB > 0 {
			rss = append(rss, s.RSSMB)
		}
	}
	add("rss_max", "MiB", percentile(rss, 100), fmt.Sprintf("serve's largest RSS over the whole run; %s", runNote), 0, "")
	add("cpu_mean", "cores", mean(cpu), fmt.Sprintf("serve's user+sys CPU per wall second %s (p99 %.2f), beside %d busy-loop hog(s) on %d cores", window, percentile(cpu, 99), rec.Hogs, rec.Machine.Cores), 0, "")

	// files per table: the largest count seen, and where it ended
	type tf struct {
		table                string
		maxFiles, finalFiles int
		maxMeta, finalMeta   int64
		maxMetaN, finalMetaN int
		finalBytes           int64
	}
	byT := map[string]*tf{}
	for _, s := range rec.Samples {
		for t, st := range s.Tables {
			x := byT[t]
			if x == nil {
				x = &tf{table: t}
				byT[t] = x
			}
			x.maxFiles = max(x.maxFiles, st.DataFiles)
			x.maxMeta = max(x.maxMeta, st.MetadataBytes)
			x.maxMetaN = max(x.maxMetaN, st.MetadataFiles)
			x.finalFiles, x.finalMeta, x.finalMetaN, x.finalBytes = st.DataFiles, st.MetadataBytes, st.MetadataFiles, st.DataBytes
		}
	}
	var tfs []*tf
	for _, x := range byT {
		tfs = append(tfs, x)
	}
	sort.Slice(tfs, func(i, j int) bool {
		return tfs[i].maxFiles > tfs[j].maxFiles || tfs[i].maxFiles == tfs[j].maxFiles && tfs[i].table < tfs[j].table
	})
	if len(tfs) > 0 {
		var top []string
		for _, x := range tfs[:min(5, len(tfs))] {
			top = append(top, fmt.Sprintf("%s max %d, end %d (%.1f MB)", x.table, x.maxFiles, x.finalFiles, float64(x.finalBytes)/1e6))
		}
		add("max_data_files_per_table", "files", float64(tfs[0].maxFiles), "largest data-file count of any table at any sample: "+strings.Join(top, "; ")+
			" (compaction: warehouse.maintenance.interval, 10 min by default)", 0, "")
		sort.Slice(tfs, func(i, j int) bool { return tfs[i].maxMeta > tfs[j].maxMeta })
		var mtop []string
		for _, x := range tfs[:min(5, len(tfs))] {
			mtop = append(mtop, fmt.Sprintf("%s max %.1f MB in %d files, end %.1f MB in %d", x.table, float64(x.maxMeta)/1e6, x.maxMetaN, float64(x.finalMeta)/1e6, x.finalMetaN))
		}
		add("max_metadata_bytes_per_table", "MB", float64(tfs[0].maxMeta)/1e6, "largest metadata directory: "+strings.Join(mtop, "; "), 0, "")
	}
	var errs []string
	for _, s := range rec.Samples {
		for _, e := range s.Errors {
			if len(errs) < 5 {
				errs = append(errs, fmt.Sprintf("t=%.0f %s", s.T, e))
			}
		}
	}
	if len(errs) > 0 {
		rec.Summary["sample_errors"] = errs
		logf("soak: sample errors (first %d): %s", len(errs), strings.Join(errs, " | "))
	}
	rec.Summary["results"] = out

	dir := abs(*soakOut)
	js, err := json.MarshalIndent(rec, "", " ")
	if err != nil {
		logf("soak: soak.json: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "soak.json"), append(js, '\n'), 0o644); err != nil {
		logf("soak: %v", err)
	}
	svg := filepath.Join(dir, "soak.svg")
	if err := os.WriteFile(svg, []byte(soakSVG(rec)), 0o644); err != nil {
		logf("soak: %v", err)
	}
	png := filepath.Join(dir, "soak.png")
	if err := svgToPNG(svg, png); err != nil {
		logf("soak: no PNG: %v", err)
	} else {
		logf("soak: chart %s and %s", svg, png)
	}
	return out
}

func nz(x float64) float64 {
	if math.IsNaN(x) {
		return 0
	}
	return x
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// svgToPNG converts with rsvg-convert (Debian's librsvg2-bin), installing
// it with apt-get when it is missing and apt-get can run (root or sudo).
func svgToPNG(svg, png string) error {
	if _, err := exec.LookPath("rsvg-convert"); err != nil {
		apt, aerr := exec.LookPath("apt-get")
		if aerr != nil {
			return fmt.Errorf("rsvg-convert not found (install librsvg2-bin)")
		}
		args := []string{apt, "install", "-y", "-qq", "--no-install-recommends", "librsvg2-bin"}
		if os.Geteuid() != 0 {
			sudo, serr := exec.LookPath("sudo")
			if serr != nil {
				return fmt.Errorf("rsvg-convert not found (install librsvg2-bin; not root, no sudo)")
			}
			args = append([]string{sudo, "-n"}, args...)
		}
		logf("soak: rsvg-convert missing: installing librsvg2-bin (%s)", strings.Join(args, " "))
		c := exec.Command(args[0], args[1:]...)
		c.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := c.CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get install librsvg2-bin: %v: %.300s", err, out)
		}
	}
	out, err := exec.Command("rsvg-convert", "-b", "white", "-o", png, svg).CombinedOutput()
	if err != nil {
		return fmt.Errorf("rsvg-convert: %v: %s", err, out)
	}
	return nil
}
