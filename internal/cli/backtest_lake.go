package cli

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"citybrain/pipelines/warnings/forecast"
	"citybrain/warehouse"
)

// seriesRow is one series' score at one horizon (citybrain warnings backtest --source lake).
type seriesRow struct {
	Series string `json:"series"`
	forecast.Row
}

// lakeCounts reads raw.crowd_counts: one series per site and direction,
// and per site the total of its directions (its "total" rows when it has
// them), in loc's clock time at the sites' counting interval.
func lakeCounts(ctx context.Context, eng *warehouse.Engine, sites string, loc *time.Location) (map[string]forecast.Series, error) {
	q := `SELECT site_id, coalesce(direction, 'total'), observed_at, people, coalesce(interval_s, 3600) FROM raw.crowd_counts WHERE people IS NOT NULL`
	var args []any
	if sites != "" {
		var ph []string
		for _, s := range strings.Split(sites, ",") {
			ph = append(ph, "?")
			args = append(args, strings.TrimSpace(s))
		}
		q += ` AND site_id IN (` + strings.Join(ph, ", ") + `)`
	}
	rows, err := eng.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("raw.crowd_counts: %w (onboard counts with a source definition first, see docs/sources.md)", err)
	}
	defer rows.Close()
	type key struct{ site, dir string }
	pts := map[key][]forecast.Point{}
	steps := map[string]map[int]int{}
	sums := map[string]map[time.Time]float64{}
	hasTotal := map[string]bool{}
	for rows.Next() {
		var site, dir string
		var at time.Time
		var people float64
		var ivl int
		if err := rows.Scan(&site, &dir, &at, &people, &ivl); err != nil {
			return nil, err
		}
		local := at.In(loc)
		clock := time.Date(local.Year(), local.Month(), local.Day(), local.Hour(), local.Minute(), local.Second(), 0, time.UTC)
		pts[key{site, dir}] = append(pts[key{site, dir}], forecast.Point{At: clock, Value: people})
		if steps[site] == nil {
			steps[site], sums[site] = map[int]int{}, map[time.Time]float64{}
		}
		steps[site][ivl]++
		if dir == "total" {
			hasTotal[site] = true
		} else {
			sums[site][at] += people
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := map[string]forecast.Series{}
	stepOf := func(site string) time.Duration {
		best, n := 3600, 0
		for s, c := range steps[site] {
			if c > n && s > 0 {
				best, n = s, c
			}
		}
		return time.Duration(best) * time.Second
	}
	dirs := map[string]int{}
	for k, p := range pts {
		out[k.site+"/"+k.dir] = forecast.Regular(p, stepOf(k.site))
		if k.dir != "total" {
			dirs[k.site]++
		}
	}
	for site, n := range dirs {
		if hasTotal[site] || n < 2 {
			continue
		}
		var p []forecast.Point
		for at, v := range sums[site] {
			local := at.In(loc)
			p = append(p, forecast.Point{At: time.Date(local.Year(), local.Month(), local.Day(), local.Hour(), local.Minute(), local.Second(), 0, time.UTC), Value: v})
		}
		out[site+"/total"] = forecast.Regular(p, stepOf(site))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("raw.crowd_counts has no counts%s / 没有客流计数", map[bool]string{true: " for --site " + sites, false: ""}[sites != ""])
	}
	return out, nil
}

// evaluateSeries fits and scores each series (horizons in minutes).
func evaluateSeries(series map[string]forecast.Series, cal forecast.Calendar, horizonsMin []int, split float64, progress func(string)) ([]seriesRow, error) {
	names := make([]string, 0, len(series))
	for n := range series {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []seriesRow
	for _, n := range names {
		s := series[n]
		var hz []int
		for _, m := range horizonsMin {
			h := int(time.Duration(m) * time.Minute / s.Step)
			if h < 1 || time.Duration(h)*s.Step != time.Duration(m)*time.Minute {
				return nil, fmt.Errorf("%s: horizon %d min is not a whole number of its %v intervals", n, m, s.Step)
			}
			hz = append(hz, h)
		}
		progress(n)
		rows, _, err := forecast.Evaluate(s, cal, split, hz)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		for _, r := range rows {
			out = append(out, seriesRow{Series: n, Row: r})
		}
	}
	return out, nil
}

func printSeriesRows(w io.Writer, rows []seriesRow, split float64) {
	fmt.Fprintf(w, "回测 back-test: fitted on the first %.0f%% of each series, scored on the rest\n", 100*split)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "序列 series\t提前量 horizon\tn\tHA RMSE\t参照 ref RMSE\tRMSE\t比参照 vs ref\t比 HA vs HA\t80% 区间覆盖 coverage\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d min\t%d\t%.1f\t%.1f\t%.1f\t%.3f\t%.3f\t%.1f%%\t\n", r.Series, r.HorizonMin, r.N, r.HARMSE, r.RefRMSE, r.RMSE, r.VsRef, r.VsHA, 100*r.Coverage)
	}
	tw.Flush()
}
