package warnings

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"citybrain/internal/broker"
	"citybrain/schemas"
	"citybrain/warehouse"
)

// LatencyOptions size the append-to-queryable measurement.
type LatencyOptions struct {
	// Cells per interval (scale 1 ≈ 800 cells of Xicheng, scale 100 ≈ 262,144).
	Cells int
	// Windows measured after Warmup windows that build state.
	Windows, Warmup int
	// Dir holds the broker log, the lake and the engine state.
	Dir string
	Log *slog.Logger
}

// LatencyResult is what MeasureLatency found. A sample is one interval:
// every cell's record is produced (the interval's burst), the last record
// of the burst being a venue's surge; its latency runs from the broker's
// acknowledgement of that record to the warning being visible in the
// engine's API state (API) and in marts.warnings through the DuckDB query
// engine (SQL). The clock starts when the producer is called, so the
// figures include the produce round trip.
type LatencyResult struct {
	Cells, Samples                 int
	APIP50, APIP99, SQLP50, SQLP99 time.Duration
	// EvalRowsPerS is records evaluated per second by the engine over the whole run.
	EvalRowsPerS float64
	// Phases is the time per pipeline phase over the measured intervals
	// (decode, stage, state statements, rules, lifecycle, persist, commit, sink).
	Phases string
	// Intervals is each measured interval's figures ("api 1.2s sql 1.5s").
	Intervals []string
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(p*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

// MeasureLatency runs the real pipeline — embedded broker, Kafka runner,
// engine (default rules and config, state on disk), sink into a local lake —
// and measures append-to-queryable latency per interval.
func MeasureLatency(ctx context.Context, o LatencyOptions) (LatencyResult, error) {
	res := LatencyResult{Cells: o.Cells}
	log := o.Log
	emb, err := broker.StartEmbedded(o.Dir, 0, log)
	if err != nil {
		return res, err
	}
	defer emb.Close()
	client := broker.NewClient([]string{emb.Addr()}, broker.DefaultConfig())
	if err := client.EnsureTopics(ctx, "raw.mobile_signal"); err != nil {
		return res, err
	}
	lake, err := warehouse.Open(ctx, warehouse.DefaultConfig(), filepath.Join(o.Dir, "lake"), log)
	if err != nil {
		return res, err
	}
	defer lake.Close()
	reg, err := schemas.Builtin()
	if err != nil {
		return res, err
	}
	ms, _ := reg.Get("mobile_signal")
	cfg := DefaultConfig()
	l, err := NewLocal(ctx, cfg, filepath.Join(o.Dir, "warnings"), lake, client, reg, []TopicInput{{Topic: "raw.mobile_signal", Schema: "mobile_signal"}}, log)
	if err != nil {
		return res, err
	}
	ref, venues := benchReference(o.Cells)
	cellID := benchCellID
	if err := l.Eng.LoadReference(ctx, ref); err != nil {
		return res, err
	}
	var sinkAt atomic.Int64 // unix nanos of the sink's last commit
	l.Sink.OnCommit = func(context.Context, int64) { sinkAt.Store(time.Now().UnixNano()) }
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- l.Run(rctx) }()
	defer func() { cancel(); <-done }()

	qe, err := warehouse.NewEngine(ctx, lake)
	if err != nil {
		return res, err
	}
	defer qe.Close()
	w := client.Writer("raw.mobile_signal")
	defer w.Close()
	t0 := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	var apiLat, sqlLat []time.Duration
	start := time.Now()
	produced := int64(0)
	for win := 0; win < o.Warmup+o.Windows; win++ {
		at := t0.Add(time.Duration(win) * cfg.Crowd.Interval)
		probe := -1
		if win >= o.Warmup {
			probe = (win - o.Warmup) % max(venues, 1) // a different venue surges each interval
		}
		msgs := make([]kafka.Message, 0, 10000)
		flush := func() error {
			if len(msgs) == 0 {
				return nil
			}
			err := w.WriteMessages(ctx, msgs...)
			produced += int64(len(msgs))
			msgs = msgs[:0]
			return err
		}
		var probeMsgs []kafka.Message
		for i := 0; i < o.Cells; i++ {
			n := int64(100 + (i*7+win*13)%50)
			if probe >= 0 && i/40 == probe && i%40 < 4 {
				probeMsgs = append(probeMsgs, kafka.Message{Value: ms.Encode(nil, schemas.Record{cellID(i), at, int64(6000), nil, nil})})
				continue
			}
			msgs = append(msgs, kafka.Message{Value: ms.Encode(nil, schemas.Record{cellID(i), at, n, nil, nil})})
			if len(msgs) == cap(msgs) {
				if err := flush(); err != nil {
					return res, err
				}
			}
		}
		if err := flush(); err != nil {
			return res, err
		}
		if probe < 0 {
			// Warm-up: wait until the engine has read the interval.
			for l.Runner.Stats.Records.Load() < produced {
				time.Sleep(20 * time.Millisecond)
			}
			if win == o.Warmup-1 {
				l.Eng.Phases().Reset()
			}
			continue
		}
		// Timed from the produce call (the broker appends the records before it
		// acknowledges them, and the engine may read them before the ack
		// returns): an upper bound of append-to-queryable.
		appended := time.Now()
		if err := w.WriteMessages(ctx, probeMsgs...); err != nil {
			return res, err
		}
		produced += int64(len(probeMsgs))
		venue := fmt.Sprintf("V%05d", probe)
		var apiAt time.Time
		deadline := appended.Add(60 * time.Second)
		for {
			if apiAt.IsZero() {
				active := l.Eng.Active()
				// The clock is read after Active returns: it waits for the
				// batch under way, which is when the warning becomes visible.
				now := time.Now()
				for _, a := range active {
					if a.SubjectID == venue && a.EventTime.Equal(at) {
						apiAt = now
						apiLat = append(apiLat, now.Sub(appended))
					}
				}
			}
			if !apiAt.IsZero() {
				tq := time.Now()
				rows, err := qe.Query(ctx, fmt.Sprintf("SELECT count(*) FROM marts.warnings WHERE subject_id = '%s' AND event_time = TIMESTAMPTZ '%s'", venue, at.Format("2006-01-02 15:04:05+00")))
				if err == nil {
					var n int64
					for rows.Next() {
						rows.Scan(&n)
					}
					rows.Close()
					if n > 0 {
						sqlLat = append(sqlLat, time.Since(appended))
						sink := "-"
						if at := sinkAt.Load(); at > 0 {
							sink = time.Unix(0, at).Sub(appended).Round(time.Millisecond).String()
						}
						res.Intervals = append(res.Intervals, fmt.Sprintf("api %s sink %s sql %s (query %s)", apiLat[len(apiLat)-1].Round(time.Millisecond),
							sink, sqlLat[len(sqlLat)-1].Round(time.Millisecond), time.Since(tq).Round(time.Millisecond)))
						break
					}
				}
			}
			if time.Now().After(deadline) {
				return res, fmt.Errorf("interval %d: warning of %s not visible after 60 s (api seen: %v)", win, venue, !apiAt.IsZero())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	res.Samples = len(sqlLat)
	res.APIP50, res.APIP99 = percentile(apiLat, 0.5), percentile(apiLat, 0.99)
	res.SQLP50, res.SQLP99 = percentile(sqlLat, 0.5), percentile(sqlLat, 0.99)
	res.EvalRowsPerS = float64(l.Runner.Stats.Records.Load()) / time.Since(start).Seconds()
	res.Phases = l.Eng.Phases().String()
	return res, nil
}

// BenchCellID is the bench grid's cell i (benchReference).
func BenchCellID(i int) string { return benchCellID(i) }

// BenchReference is the bench's grid of cells and its venues (4 cells per 40), and the venue count.
func BenchReference(cells int) (Reference, int) { return benchReference(cells) }

func benchCellID(i int) string { return fmt.Sprintf("G%06d", i) }

// benchReference is the bench's grid: 250 m cells (62,500 m²); one venue of
// 4 cells per 40 cells, capacity 20,000 on 20,000 m².
func benchReference(cells int) (Reference, int) {
	var ref Reference
	for i := 0; i < cells; i++ {
		ref.GridCells = append(ref.GridCells, GridCell{ID: benchCellID(i), StreetCode: fmt.Sprintf("11%04d", i/2000), AreaM2: 62500})
	}
	venues := cells / 40
	for v := 0; v < venues; v++ {
		id := fmt.Sprintf("V%05d", v)
		ref.Venues = append(ref.Venues, Venue{ID: id, NameZh: "场所" + id, NameEn: "Venue " + id, Kind: "other", Capacity: 20000, AreaM2: 20000, Responsible: "unit-" + id})
		for k := 0; k < 4; k++ {
			ref.VenueCells = append(ref.VenueCells, VenueCell{VenueID: id, GridCellID: benchCellID(v*40 + k), Share: 1})
		}
	}
	return ref, venues
}
