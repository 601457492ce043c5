package warnings

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"citybrain/schemas"
)

// Beijing is China Standard Time (UTC+8, no daylight saving since 1991).
var Beijing = time.FixedZone("CST", 8*3600)

// ReadPRSA reads an hourly station file of the UCI "Beijing Multi-Site
// Air-Quality Data" set (columns year, month, day, hour, RAIN, station;
// Beijing time) into raw.weather records (only the fields the rules use).
func ReadPRSA(path string, s *schemas.Schema) ([]schemas.Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("雨量文件无法打开 open rain record: %w", err)
	}
	defer f.Close()
	cr := csv.NewReader(f)
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: header: %w", path, err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[strings.Trim(h, `" `)] = i
	}
	for _, need := range []string{"year", "month", "day", "hour", "RAIN", "station"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("%s: 缺少列 %q / column %q missing (want the PRSA_Data_*.csv layout)", path, need, need)
		}
	}
	iStation, iAt, iRain := s.Index("station"), s.Index("observed_at"), s.Index("rain_mm")
	var out []schemas.Record
	line := 1
	for {
		row, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line++
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, line, err)
		}
		n := func(k string) int { v, _ := strconv.Atoi(row[col[k]]); return v }
		at := time.Date(n("year"), time.Month(n("month")), n("day"), n("hour"), 0, 0, 0, Beijing)
		r := make(schemas.Record, len(s.Fields))
		r[iStation] = row[col["station"]]
		r[iAt] = at.UTC()
		if v, err := strconv.ParseFloat(row[col["RAIN"]], 64); err == nil {
			r[iRain] = v
		}
		out = append(out, r)
	}
	return out, nil
}

// Episode is one rainstorm warning from raised to cleared.
type Episode struct {
	WarningID   string    `json:"warning_id"`
	Station     string    `json:"station"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	FirstLevel  string    `json:"first_level"`
	MaxLevel    string    `json:"max_level"`
	Peak3h      float64   `json:"peak_3h_mm"`
	Peak6h      float64   `json:"peak_6h_mm"`
	Peak12h     float64   `json:"peak_12h_mm"`
	TotalMM     float64   `json:"total_mm"`
	Transitions []string  `json:"transitions"`
}

// RainstormBacktest replays an hourly rain record through the engine's
// rainstorm rule (in-memory state, same rules and lifecycle as serve) and
// returns every episode, with the peak rolling sums inside it.
func RainstormBacktest(ctx context.Context, cfg Config, reg *schemas.Registry, recs []schemas.Record, log *slog.Logger) ([]Episode, error) {
	e, err := Open(ctx, cfg, "", reg, log, func() time.Time { return time.Now() })
	if err != nil {
		return nil, err
	}
	defer e.Close()
	s, _ := reg.Get("weather")
	iStation, iAt, iRain := s.Index("station"), s.Index("observed_at"), s.Index("rain_mm")
	sort.SliceStable(recs, func(i, j int) bool { return recs[i][iAt].(time.Time).Before(recs[j][iAt].(time.Time)) })
	var ts []Transition
	const chunk = 24 * 14
	for i := 0; i < len(recs); i += chunk {
		b := Batch{Records: map[string][]schemas.Record{"weather": recs[i:min(i+chunk, len(recs))]}}
		out, err := e.Process(ctx, b)
		if err != nil {
			return nil, err
		}
		ts = append(ts, out...)
	}
	// Hourly rain per station for the peaks.
	type obs struct {
		at   time.Time
		rain float64
	}
	series := map[string][]obs{}
	for _, r := range recs {
		v, _ := r[iRain].(float64)
		st, _ := r[iStation].(string)
		series[st] = append(series[st], obs{r[iAt].(time.Time), v})
	}
	sum := func(st string, end time.Time, hours int) float64 {
		total := 0.0
		for _, o := range series[st] {
			if o.at.After(end.Add(-time.Duration(hours)*time.Hour)) && !o.at.After(end) {
				total += o.rain
			}
		}
		return total
	}
	var eps []Episode
	open := map[string]*Episode{}
	for _, t := range ts {
		if t.Kind != "rainstorm" {
			continue
		}
		ep := open[t.WarningID]
		if ep == nil {
			ep = &Episode{WarningID: t.WarningID, Station: t.SubjectID, Start: t.EventTime, FirstLevel: t.Level, MaxLevel: t.Level}
			open[t.WarningID] = ep
		}
		ep.Transitions = append(ep.Transitions, fmt.Sprintf("%s %s %s", t.EventTime.In(Beijing).Format("01-02 15:04"), t.State, t.Level))
		if LevelOf(t.Level) > LevelOf(ep.MaxLevel) {
			ep.MaxLevel = t.Level
		}
		if t.State == "cleared" {
			ep.End = t.EventTime
			eps = append(eps, *ep)
			delete(open, t.WarningID)
		}
	}
	for _, ep := range open {
		eps = append(eps, *ep)
	}
	for i := range eps {
		ep := &eps[i]
		end := ep.End
		if end.IsZero() {
			end = ep.Start.Add(72 * time.Hour)
		}
		for _, o := range series[ep.Station] {
			if o.at.Before(ep.Start.Add(-12*time.Hour)) || o.at.After(end) {
				continue
			}
			if !o.at.Before(ep.Start) {
				ep.Peak3h = max(ep.Peak3h, sum(ep.Station, o.at, 3))
				ep.Peak6h = max(ep.Peak6h, sum(ep.Station, o.at, 6))
				ep.Peak12h = max(ep.Peak12h, sum(ep.Station, o.at, 12))
			}
		}
		ep.TotalMM = sum(ep.Station, end, int(end.Sub(ep.Start.Add(-12*time.Hour)).Hours()))
	}
	sort.Slice(eps, func(i, j int) bool { return eps[i].Start.Before(eps[j].Start) })
	return eps, nil
}
