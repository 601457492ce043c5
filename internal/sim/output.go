package sim

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// Output directories below Config.OutDir.
const (
	WorldDir        = "world"
	FeedsDir        = "feeds"
	GroundTruthFile = "ground_truth.jsonl"
)

// Feed subdirectories of FeedsDir (file drops, and what the HTTP and MQTT
// feeds carried, for offline use).
const (
	FeedMobile   = "mobile_signal"
	FeedVenue    = "venue_counts"
	FeedTraffic  = "traffic"
	FeedWeather  = "weather"
	FeedPlanning = "planning"
	FeedPolice   = "police"
	FeedWater    = "water"
	FeedCity     = "city_management"
	FeedCalls    = "emergency"
)

// WriteWorld writes every reference table as <dir>/world/<table>.csv
// (UTF-8, header = canonical field names).
func (w *World) WriteWorld(dir string) (rows int, err error) {
	d := filepath.Join(dir, WorldDir)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return 0, err
	}
	names := make([]string, 0, len(w.Tables))
	for n := range w.Tables {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t := w.Tables[n]
		if err := writeCSV(filepath.Join(d, n+".csv"), t.Cols, t.Rows); err != nil {
			return rows, err
		}
		rows += len(t.Rows)
	}
	return rows, nil
}

// writeCSV writes atomically: a .tmp file renamed into place, so a file
// connector polling *.csv never sees half a file.
func writeCSV(path string, cols []string, rows [][]string) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	cw := csv.NewWriter(bw)
	cw.Write(cols)
	cw.WriteAll(rows)
	if err := cw.Error(); err != nil {
		f.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func writeJSONL[T any](path string, recs []T) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for _, r := range recs {
		if err := enc.Encode(r); err != nil {
			f.Close()
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ChunkOptions choose which feeds a chunk writes to files.
type ChunkOptions struct {
	// Police to files (false when police go to PostgreSQL).
	Police bool
	// Offline also writes what the HTTP and MQTT feeds carry (water
	// messages, Open311 requests as of the chunk's end, emergency calls) as
	// JSON Lines, for benchmarks and tests without the servers.
	Offline bool
}

// RowCounts are rows written per feed.
type RowCounts map[string]int

// WriteChunk writes the file-drop feeds for the intervals (5 minutes, an
// hour, a day …) that end in simulated time (from, to], below dir/feeds,
// one file per feed named after from: data is published once its interval
// is over, as a department would.
func (s *Sim) WriteChunk(dir string, from, to time.Time, opt ChunkOptions) (RowCounts, error) {
	n := RowCounts{}
	stamp := from.In(Shanghai).Format("20060102T1504")
	mk := func(feed string) (string, error) {
		d := filepath.Join(dir, FeedsDir, feed)
		return d, os.MkdirAll(d, 0o755)
	}
	each := func(d time.Duration, fn func(t time.Time)) { eachEnd(from, to, d, fn) }
	csvFeed := func(feed, prefix string, cols []string, d time.Duration, gen func(time.Time) [][]string) error {
		var rows [][]string
		each(d, func(t time.Time) { rows = append(rows, gen(t)...) })
		if len(rows) == 0 {
			return nil
		}
		p, err := mk(feed)
		if err != nil {
			return err
		}
		n[feed] += len(rows)
		return writeCSV(filepath.Join(p, prefix+"_"+stamp+".csv"), cols, rows)
	}
	if err := csvFeed(FeedMobile, "ms", MobileCols, s.Cfg.Rates.MobileInterval, s.MobileRows); err != nil {
		return n, err
	}
	if err := csvFeed(FeedVenue, "vc", VenueCountCols, s.Cfg.Rates.MobileInterval, s.VenueCountRows); err != nil {
		return n, err
	}
	if err := csvFeed(FeedTraffic, "ts", TrafficCols, s.Cfg.Rates.TrafficInterval, s.TrafficRows); err != nil {
		return n, err
	}
	hourNo := func(t time.Time) int64 { return int64(t.Sub(s.Epoch)/time.Hour) + 1 }
	if err := csvFeed(FeedWeather, "wx", s.wxHeader, time.Hour, func(t time.Time) [][]string { return [][]string{s.weatherRow(t, hourNo(t))} }); err != nil {
		return n, err
	}
	if err := csvFeed(FeedPlanning, "bp", PermitCols, 24*time.Hour, func(t time.Time) [][]string {
		return s.PermitRows(time.Date(t.In(Shanghai).Year(), t.In(Shanghai).Month(), t.In(Shanghai).Day(), 0, 0, 0, 0, Shanghai))
	}); err != nil {
		return n, err
	}
	if opt.Police {
		if err := csvFeed(FeedPolice, "pc", PoliceCols, time.Hour, s.PoliceRows); err != nil {
			return n, err
		}
	}
	if !opt.Offline {
		return n, nil
	}
	var msgs []WaterMsg
	each(s.Cfg.Rates.WaterInterval, func(t time.Time) { msgs = append(msgs, s.WaterMsgs(t)...) })
	var reqs []map[string]any
	var calls []Call
	each(time.Hour, func(t time.Time) {
		for _, e := range s.CityEvents(t) {
			reqs = append(reqs, e.Open311(to))
		}
		calls = append(calls, s.Calls(t)...)
	})
	for _, x := range []struct {
		feed, name string
		write      func(string) error
		rows       int
	}{
		{FeedWater, "wt", func(p string) error { return writeJSONL(p, msgs) }, len(msgs)},
		{FeedCity, "open311", func(p string) error { return writeJSONL(p, reqs) }, len(reqs)},
		{FeedCalls, "calls", func(p string) error { return writeJSONL(p, calls) }, len(calls)},
	} {
		if x.rows == 0 {
			continue
		}
		p, err := mk(x.feed)
		if err != nil {
			return n, err
		}
		if err := x.write(filepath.Join(p, x.name+"_"+stamp+".jsonl")); err != nil {
			return n, err
		}
		n[x.feed] += x.rows
	}
	return n, nil
}

// Result summarises a Generate run.
type Result struct {
	Dir          string
	Epoch, Until time.Time
	WorldRows    int
	Cells        int
	FeedRows     RowCounts
	Incidents    int
	WorldTime    time.Duration
	FeedTime     time.Duration
}

// Generate writes the world and `days` days of history ending at until
// (every feed, the HTTP and MQTT ones as JSON Lines) and the ground truth
// into dir, deterministically: the same cfg and until give byte-identical
// files. progress, if not nil, is called after each simulated day.
func Generate(cfg Config, dir string, until time.Time, days int, progress func(day int, rows int)) (*Result, error) {
	until = until.In(Shanghai).Truncate(time.Hour)
	epoch := until.AddDate(0, 0, -days)
	t0 := time.Now()
	s, err := New(cfg, epoch)
	if err != nil {
		return nil, err
	}
	res := &Result{Dir: dir, Epoch: epoch, Until: until, Cells: len(s.W.Cells), FeedRows: RowCounts{}}
	if res.WorldRows, err = s.W.WriteWorld(dir); err != nil {
		return nil, fmt.Errorf("write world: %w", err)
	}
	res.WorldTime = time.Since(t0)
	t1 := time.Now()
	total := 0
	for d := 0; d < days; d++ {
		from := epoch.AddDate(0, 0, d)
		c, err := s.WriteChunk(dir, from, from.AddDate(0, 0, 1), ChunkOptions{Police: true, Offline: true})
		if err != nil {
			return nil, fmt.Errorf("write feeds of %s: %w", from.Format("2006-01-02"), err)
		}
		for k, v := range c {
			res.FeedRows[k] += v
			total += v
		}
		if progress != nil {
			progress(d+1, total)
		}
	}
	in := s.Incidents(epoch, until)
	res.Incidents = len(in)
	if err := WriteGroundTruth(filepath.Join(dir, GroundTruthFile), in); err != nil {
		return nil, err
	}
	res.FeedTime = time.Since(t1)
	return res, nil
}
