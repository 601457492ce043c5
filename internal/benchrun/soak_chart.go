package main

import (
	"fmt"
	"html"
	"math"
	"sort"
	"strings"
)

// The soak chart: panels stacked over one time axis (minutes since serve
// started), written as SVG by hand (no plotting module in this build).

type chartPoint struct{ x, y float64 }

type chartSeries struct {
	name    string
	pts     []chartPoint
	scatter bool
	dash    bool
}

type chartPanel struct {
	title  string
	log    bool
	series []chartSeries
	goal   float64 // a horizontal goal line (0: none)
}

var chartColors = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"}

func soakSVG(rec *soakRecord) string {
	mins := func(s soakSample) float64 { return s.T / 60 }
	var panels []chartPanel

	// 1. lag per path: the four worst of each component (the legend holds
	// about a dozen; every path is in soak.json)
	ps := rec.pathStats()
	var chosen []string
	perComponent := map[string]int{}
	for _, p := range ps {
		comp, _, _ := strings.Cut(p.Path, "/")
		if p.Max == 0 || perComponent[comp] >= 4 {
			continue
		}
		perComponent[comp]++
		chosen = append(chosen, p.Path)
	}
	sort.Strings(chosen)
	p1 := chartPanel{title: "Freshness lag, the 4 worst paths of each component (citybrain_freshness_lag_seconds, s, log; 0 at 0.1)", log: true, goal: soakGoalFreshS}
	for _, k := range chosen {
		cs := chartSeries{name: k}
		for _, s := range rec.Samples {
			if p, ok := s.Paths[k]; ok {
				cs.pts = append(cs.pts, chartPoint{mins(s), p.LagS})
			}
		}
		p1.series = append(p1.series, cs)
	}
	panels = append(panels, p1)

	// 2. warning freshness: simulated data time → visible
	p2 := chartPanel{title: "Warning freshness: simulated data time → visible (wall s, log scale)", log: true, goal: soakGoalFreshS}
	eng := chartSeries{name: "engine event time (sampled)"}
	pg := chartSeries{name: "pgwire max(event_time) (sampled)", dash: true}
	for _, s := range rec.Samples {
		if s.EngineAgeS > 0 {
			eng.pts = append(eng.pts, chartPoint{mins(s), s.EngineAgeS})
		}
		if s.PGAgeS > 0 {
			pg.pts = append(pg.pts, chartPoint{mins(s), s.PGAgeS})
		}
	}
	api := chartSeries{name: "transition on /api/warnings/stream", scatter: true}
	cock := chartSeries{name: "transition on cockpit SSE", scatter: true}
	pgt := chartSeries{name: "transition over pgwire (2 s poll)", scatter: true}
	for _, tr := range rec.Transitions {
		if tr.APIFreshS > 0 {
			api.pts = append(api.pts, chartPoint{tr.API.Sub(rec.Start).Minutes(), tr.APIFreshS})
		}
		if tr.CockpitFreshS > 0 {
			cock.pts = append(cock.pts, chartPoint{tr.Cockpit.Sub(rec.Start).Minutes(), tr.CockpitFreshS})
		}
		if tr.PGFreshS > 0 {
			pgt.pts = append(pgt.pts, chartPoint{tr.PG.Sub(rec.Start).Minutes(), tr.PGFreshS})
		}
	}
	p2.series = []chartSeries{eng, pg, api, cock, pgt}
	panels = append(panels, p2)

	// 3, 4. RSS and CPU
	rss := chartSeries{name: "serve RSS (MiB)"}
	cpu := chartSeries{name: "serve CPU (cores)"}
	load := chartSeries{name: "load average (1 min)", dash: true}
	for _, s := range rec.Samples {
		if s.RSSMB > 0 {
			rss.pts = append(rss.pts, chartPoint{mins(s), s.RSSMB})
		}
		if s.CPUCores > 0 {
			cpu.pts = append(cpu.pts, chartPoint{mins(s), s.CPUCores})
		}
		load.pts = append(load.pts, chartPoint{mins(s), s.Load1})
	}
	panels = append(panels, chartPanel{title: "serve resident set (MiB)", series: []chartSeries{rss}},
		chartPanel{title: fmt.Sprintf("serve CPU (cores) beside %d busy-loop hog(s); load average", rec.Hogs), series: []chartSeries{cpu, load}})

	// 5, 6. files and metadata per table: the six largest
	maxFiles, maxMeta := map[string]float64{}, map[string]float64{}
	for _, s := range rec.Samples {
		for t, st := range s.Tables {
			maxFiles[t] = math.Max(maxFiles[t], float64(st.DataFiles))
			maxMeta[t] = math.Max(maxMeta[t], float64(st.MetadataBytes))
		}
	}
	top := func(m map[string]float64) []string {
		var ks []string
		for k := range m {
			ks = append(ks, k)
		}
		sort.Slice(ks, func(i, j int) bool { return m[ks[i]] > m[ks[j]] || m[ks[i]] == m[ks[j]] && ks[i] < ks[j] })
		return ks[:min(6, len(ks))]
	}
	pf := chartPanel{title: "Data files per table (the six largest)"}
	for _, t := range top(maxFiles) {
		cs := chartSeries{name: t}
		for _, s := range rec.Samples {
			if st, ok := s.Tables[t]; ok {
				cs.pts = append(cs.pts, chartPoint{mins(s), float64(st.DataFiles)})
			}
		}
		pf.series = append(pf.series, cs)
	}
	pm := chartPanel{title: "Metadata MB per table (the six largest)"}
	for _, t := range top(maxMeta) {
		cs := chartSeries{name: t}
		for _, s := range rec.Samples {
			if st, ok := s.Tables[t]; ok {
				cs.pts = append(cs.pts, chartPoint{mins(s), float64(st.MetadataBytes) / 1e6})
			}
		}
		pm.series = append(pm.series, cs)
	}
	panels = append(panels, pf, pm)

	var marks []struct {
		x    float64
		name string
	}
	if rec.ReadyS > 0 {
		marks = append(marks, struct {
			x    float64
			name string
		}{rec.ReadyS / 60, "Ready"})
	}
	if rec.CatchUpS >= 0 {
		marks = append(marks, struct {
			x    float64
			name string
		}{rec.CatchUpS / 60, "engine caught up"})
	}
	xmax := 1.0
	if n := len(rec.Samples); n > 0 {
		xmax = math.Max(rec.Samples[n-1].T/60, 1)
	}

	const (
		W, left, right, ph, gap, top0 = 1200.0, 70.0, 330.0, 210.0, 62.0, 70.0
	)
	pw := W - left - right
	H := top0 + float64(len(panels))*(ph+gap) + 10
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="DejaVu Sans, Arial, sans-serif" font-size="11">`+"\n", W, H, W, H)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="24" font-size="16" font-weight="bold">CityBrain soak: make run's demo at sim.speed %.0f beside %d CPU hog(s), %d cores</text>`+"\n", left, rec.Speed, rec.Hogs, rec.Machine.Cores)
	fmt.Fprintf(&b, `<text x="%.0f" y="44" fill="#555">%s · commit %s · backfill %d days · sampled every %.0f s · x axis: minutes since serve started</text>`+"\n",
		left, html.EscapeString(rec.Machine.Date), html.EscapeString(rec.Machine.Commit), rec.BackfillDay, rec.Interval)
	sx := func(x float64) float64 { return left + x/xmax*pw }
	for i, p := range panels {
		y0 := top0 + float64(i)*(ph+gap) + 18
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="13" font-weight="bold">%s</text>`+"\n", left, y0-6, html.EscapeString(p.title))
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, s := range p.series {
			for _, q := range s.pts {
				lo, hi = math.Min(lo, q.y), math.Max(hi, q.y)
			}
		}
		if p.goal > 0 {
			hi = math.Max(hi, p.goal*1.5)
		}
		if math.IsInf(lo, 0) {
			lo, hi = 0, 1
		}
		var fy func(float64) float64
		var ticks []float64
		if p.log {
			lo = 0.1
			hi = math.Pow(10, math.Ceil(math.Log10(math.Max(hi, 1))))
			l0, l1 := math.Log10(lo), math.Log10(hi)
			fy = func(v float64) float64 {
				v = math.Max(v, lo)
				return y0 + ph - (math.Log10(v)-l0)/(l1-l0)*ph
			}
			for t := lo; t <= hi*1.0001; t *= 10 {
				ticks = append(ticks, t)
			}
		} else {
			lo = 0
			if hi <= 0 {
				hi = 1
			}
			step := niceStep(hi / 5)
			hi = math.Ceil(hi/step) * step
			fy = func(v float64) float64 { return y0 + ph - (v-lo)/(hi-lo)*ph }
			for t := 0.0; t <= hi*1.0001; t += step {
				ticks = append(ticks, t)
			}
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#999"/>`+"\n", left, y0, pw, ph)
		for _, t := range ticks {
			y := fy(t)
			fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#eee"/><text x="%.1f" y="%.1f" text-anchor="end" fill="#555">%s</text>`+"\n",
				left, left+pw, y, y, left-5, y+4, tickLabel(t))
		}
		xstep := niceStep(xmax / 10)
		for x := 0.0; x <= xmax*1.0001; x += xstep {
			fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#eee"/><text x="%.1f" y="%.1f" text-anchor="middle" fill="#555">%s</text>`+"\n",
				sx(x), sx(x), y0, y0+ph, sx(x), y0+ph+14, tickLabel(x))
		}
		for _, m := range marks {
			fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#444" stroke-dasharray="3,3"/><text x="%.1f" y="%.1f" fill="#444" font-size="10">%s</text>`+"\n",
				sx(m.x), sx(m.x), y0, y0+ph, sx(m.x)+3, y0+11, html.EscapeString(m.name))
		}
		if p.goal > 0 {
			y := fy(p.goal)
			fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#d62728" stroke-dasharray="6,3"/><text x="%.1f" y="%.1f" fill="#d62728" font-size="10" text-anchor="end">goal %g s</text>`+"\n",
				left, left+pw, y, y, left+pw-3, y-3, p.goal)
		}
		for j, s := range p.series {
			c := chartColors[j%len(chartColors)]
			if s.scatter {
				for _, q := range s.pts {
					fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="2.2" fill="%s" fill-opacity="0.7"/>`, sx(q.x), fy(q.y), c)
				}
				b.WriteString("\n")
			} else if len(s.pts) > 0 {
				var pts []string
				for _, q := range s.pts {
					pts = append(pts, fmt.Sprintf("%.1f,%.1f", sx(q.x), fy(q.y)))
				}
				dash := ""
				if s.dash {
					dash = ` stroke-dasharray="4,2"`
				}
				fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.4"%s points="%s"/>`+"\n", c, dash, strings.Join(pts, " "))
			}
			ly := y0 + 8 + float64(j)*15
			if s.scatter {
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`, left+pw+16, ly, c)
			} else {
				fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s" stroke-width="2"/>`, left+pw+10, left+pw+24, ly, ly, c)
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f">%s (%d)</text>`+"\n", left+pw+30, ly+4, html.EscapeString(s.name), len(s.pts))
		}
		if len(p.series) == 0 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="#999">no data</text>`+"\n", left+10, y0+20)
		}
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// niceStep rounds a raw step up to 1, 2 or 5 × 10^k.
func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

func tickLabel(v float64) string {
	switch {
	case v == 0:
		return "0"
	case math.Abs(v) >= 1000:
		// 1.5k, not 2k: ticks 500 apart must not share a label.
		return fmt.Sprintf("%gk", math.Round(v/100)/10)
	case math.Abs(v) >= 1:
		return fmt.Sprintf("%g", math.Round(v*10)/10)
	default:
		return fmt.Sprintf("%g", v)
	}
}
