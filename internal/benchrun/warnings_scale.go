package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"citybrain/internal/broker"
	"citybrain/internal/testenv"
	"citybrain/pipelines/warnings"
	"citybrain/schemas"
	"citybrain/warehouse"
	"citybrain/warehouse/objstore"
)

// The partitioned warning engine on 1 and 2 instances (issue #23, item 4).
func init() {
	registerSuite(Suite{
		Name: "warnings-scale",
		Doc: `The partitioned warning engine (docs/roles.md) at scale 100 (262,144 grid cells an interval) on 1 and on 2
instances, each instance a process of its own (benchrun -child-warnings) in the consumer group, on this machine: the
embedded broker with raw.mobile_signal in 2 partitions (so 3 units: 2 cell units and the district unit), the lake on the
SQL catalog in PostgreSQL, checkpoints every warnings.checkpoint_every (10 s). Each interval is a burst of every cell's record, keyed by cell, the last ones a venue's surge;
latency runs from the producer call for the surge to the venue's warning made by the instance owning the district unit
(its transition time, read from that instance's output). Records/s: the measured intervals' records over their wall time
(a closed loop: an interval is produced once the one before was warned of). CPU: each instance's user+sys over the run. On 2 cores two instances share the same 2 cores,
and the district unit reads every partition of mobile_signal (it keeps the venues' cells): the gain is bounded — reported as measured.
Each is run on the quiet machine, then beside two CPU-bound processes (busy loops, as "under load" asks).`,
		Reproduce: "go run ./internal/benchrun -suite warnings-scale",
		Run:       runWarningsScaleBench,
	})
}

// scaleChildOut is one line a warnings child prints: a venue transition, its
// units, or at exit its totals.
type scaleChildOut struct {
	Subject   string    `json:"subject,omitempty"`
	EventTime time.Time `json:"event_time,omitempty"`
	At        int64     `json:"at,omitempty"` // unix nanos the transition was made
	Owned     []int     `json:"owned,omitempty"`
	OwnedSet  bool      `json:"owned_set,omitempty"`
	Records   int64     `json:"records,omitempty"`
	CkN       int64     `json:"checkpoints,omitempty"`
	CkS       float64   `json:"checkpoint_s,omitempty"`
	CkBytes   int64     `json:"checkpoint_bytes,omitempty"`
	UserS     float64   `json:"user_s,omitempty"`
	SysS      float64   `json:"sys_s,omitempty"`
	Done      bool      `json:"done,omitempty"`
}

const scaleParts = 2

// scaleCells is 262,144 (scale 100), or CITYBRAIN_BENCH_WSCALE_CELLS for a quick run.
func scaleCells() int {
	var n int
	if _, err := fmt.Sscan(os.Getenv("CITYBRAIN_BENCH_WSCALE_CELLS"), &n); err == nil && n >= 80 {
		return n
	}
	return 262144
}

// scaleLakeConfig is the lake the parent and the children share.
func scaleLakeConfig(dir, dsn string) warehouse.Config {
	c := warehouse.DefaultConfig()
	c.Catalog, c.Dir, c.SQL.DSN = "sql", filepath.Join(dir, "lake"), dsn
	c.Maintenance.Interval = 0
	return c
}

// runWarningsChild is one warnings instance: a Group over the broker, lake
// and reference of the bench, printing venue transitions and its units.
func runWarningsChild(ctx context.Context, dir, dsn, bootstrap string, cells int) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	lake, err := warehouse.Open(ctx, scaleLakeConfig(dir, dsn), dir, log)
	if err != nil {
		return err
	}
	defer lake.Close()
	reg, err := schemas.Builtin()
	if err != nil {
		return err
	}
	side, err := objstore.NewLocal(filepath.Join(dir, "side"))
	if err != nil {
		return err
	}
	bcfg := broker.DefaultConfig()
	bcfg.Partitions = scaleParts
	ref, _ := warnings.BenchReference(cells)
	var mu sync.Mutex
	out := json.NewEncoder(os.Stdout)
	emit := func(v scaleChildOut) { mu.Lock(); out.Encode(v); mu.Unlock() }
	hub := warnings.NewHub()
	sub, cancelSub := hub.Subscribe()
	defer cancelSub()
	go func() {
		for t := range sub {
			if t.SubjectType == "venue" && t.State == "raised" {
				emit(scaleChildOut{Subject: t.SubjectID, EventTime: t.EventTime, At: time.Now().UnixNano()})
			}
		}
	}()
	tmp, err := os.MkdirTemp(dir, "instance-")
	if err != nil {
		return err
	}
	g := &warnings.Group{Cfg: warnings.DefaultConfig(), Client: broker.NewClient([]string{bootstrap}, bcfg), Reg: reg, Lake: lake, Log: log, Hub: hub,
		Inputs: []warnings.TopicInput{{Topic: "raw.mobile_signal", Schema: "mobile_signal"}}, Dir: tmp, Partitions: scaleParts,
		Checkpoints: &warnings.Checkpoints{Store: side}, CheckpointEvery: warnings.DefaultConfig().CheckpointEvery, SessionTimeout: 10 * time.Second,
		Reference:  func(ctx context.Context, eng *warnings.Engine) error { return eng.LoadReference(ctx, ref) },
		RefVersion: func() int64 { return 1 },
		OnOwned:    func(units []int) { emit(scaleChildOut{Owned: units, OwnedSet: true}) }}
	err = g.Run(ctx)
	u, s, _ := rusage()
	emit(scaleChildOut{Done: true, Records: g.Stats.Records.Load(), UserS: u.Seconds(), SysS: s.Seconds(),
		CkN: g.Stats.Checkpoints.Load(), CkS: time.Duration(g.Stats.CheckpointNanos.Load()).Seconds(), CkBytes: g.Stats.CheckpointBytes.Load()})
	return err
}

type scaleChild struct {
	*groupChild
	seen map[string]int64 // venue|event time → unix nanos
	last scaleChildOut
}

func runWarningsScaleBench(ctx context.Context, tmp string) []Result {
	var out []Result
	pg, err := testenv.StartPostgres(ctx, filepath.Join(tmp, "pg"))
	if err != nil {
		return []Result{{Name: "warnings-scale/scale100", Status: "failed", Reason: "PostgreSQL: " + err.Error(), Unit: "ms"}}
	}
	defer pg.Stop()
	// Quiet, then beside two CPU-bound processes (busy loops) as a shared machine runs it.
	for _, hogs := range []int{0, 2} {
		var stops []func()
		for range hogs {
			if _, stop, err := startHog(); err == nil {
				stops = append(stops, stop)
			}
		}
		for _, n := range []int{1, 2} {
			dsn, err := createDatabase(ctx, pg.DSN(), fmt.Sprintf("citybrain_wscale_%d_%d", n, hogs))
			if err == nil {
				var rs []Result
				rs, err = measureScale(ctx, filepath.Join(tmp, fmt.Sprintf("wscale-%d-%d", n, hogs)), dsn, n, scaleCells(), 2, 8, len(stops))
				out = append(out, rs...)
			}
			if err != nil {
				out = append(out, Result{Name: fmt.Sprintf("warnings-scale/scale100_%d_instances_%dhogs_p99", n, hogs), Status: "failed", Reason: err.Error(), Unit: "ms"})
			}
		}
		for _, stop := range stops {
			stop()
		}
	}
	return out
}

func measureScale(ctx context.Context, dir, dsn string, instances, cells, warmup, windows, hogs int) ([]Result, error) {
	log := slog.New(slog.DiscardHandler)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	emb, err := broker.StartEmbedded(dir, 0, log)
	if err != nil {
		return nil, err
	}
	defer emb.Close()
	bcfg := broker.DefaultConfig()
	bcfg.Partitions = scaleParts
	client := broker.NewClient([]string{emb.Addr()}, bcfg)
	if err := client.EnsureTopics(ctx, "raw.mobile_signal"); err != nil {
		return nil, err
	}
	var children []*scaleChild
	var procs []*groupChild
	defer func() {
		for _, c := range procs {
			c.stop(30 * time.Second)
		}
	}()
	for i := 0; i < instances; i++ {
		sc := &scaleChild{seen: map[string]int64{}}
		gc, err := startGroupChild(ctx, []string{"-child-warnings", "-data", dir, "-dsn", dsn, "-bootstrap", emb.Addr(), "-cells", fmt.Sprint(cells)}, func(c *groupChild, b []byte) {
			var o scaleChildOut
			if json.Unmarshal(b, &o) != nil {
				return
			}
			switch {
			case o.OwnedSet:
				c.owned = o.Owned
			case o.Done:
				sc.last = o
			case o.Subject != "":
				sc.seen[o.Subject+"|"+o.EventTime.UTC().Format(time.RFC3339)] = o.At
			}
		})
		if err != nil {
			return nil, err
		}
		sc.groupChild = gc
		children = append(children, sc)
		procs = append(procs, gc)
	}
	// Every unit owned, each instance with some.
	deadline := time.Now().Add(3 * time.Minute)
	for !shared(procs, scaleParts+1) {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d instances did not share the %d units within 3 minutes", instances, scaleParts+1)
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // the units restored and reading
	reg, _ := schemas.Builtin()
	ms, _ := reg.Get("mobile_signal")
	w := client.Writer("raw.mobile_signal")
	defer w.Close()
	_, venues := warnings.BenchReference(cells)
	t0 := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	var lat []time.Duration
	var intervals []string
	var measuredStart time.Time
	for win := 0; win < warmup+windows; win++ {
		at := t0.Add(time.Duration(win) * 5 * time.Minute)
		probe := win % venues
		var msgs, probeMsgs []kafka.Message
		for i := 0; i < cells; i++ {
			id := warnings.BenchCellID(i)
			if i/40 == probe && i%40 < 4 {
				probeMsgs = append(probeMsgs, kafka.Message{Key: []byte(id), Value: ms.Encode(nil, schemas.Record{id, at, int64(6000), nil, nil})})
				continue
			}
			msgs = append(msgs, kafka.Message{Key: []byte(id), Value: ms.Encode(nil, schemas.Record{id, at, int64(100 + (i*7+win*13)%50), nil, nil})})
		}
		if win == warmup {
			measuredStart = time.Now()
		}
		for len(msgs) > 0 {
			k := min(len(msgs), 10000)
			if err := w.WriteMessages(ctx, msgs[:k]...); err != nil {
				return nil, err
			}
			msgs = msgs[k:]
		}
		appended := time.Now()
		if err := w.WriteMessages(ctx, probeMsgs...); err != nil {
			return nil, err
		}
		key := fmt.Sprintf("V%05d|%s", probe, at.Format(time.RFC3339))
		deadline := appended.Add(2 * time.Minute)
		var made int64
		for made == 0 {
			for _, c := range children {
				c.mu.Lock()
				if v, ok := c.seen[key]; ok {
					made = v
				}
				c.mu.Unlock()
			}
			if made == 0 {
				if time.Now().After(deadline) {
					return nil, fmt.Errorf("interval %d: the warning of V%05d not made within 2 minutes", win, probe)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		if win >= warmup {
			d := time.Unix(0, made).Sub(appended)
			lat = append(lat, d)
			intervals = append(intervals, d.Round(time.Millisecond).String())
		}
	}
	wall := time.Since(measuredStart)
	produced := float64(windows * cells)
	// Stop the instances: their totals.
	var cpu []string
	var totalRecords int64
	for _, c := range children {
		c.stop(60 * time.Second)
		c.mu.Lock()
		ck := ""
		if c.last.CkN > 0 {
			ck = fmt.Sprintf(", %d checkpoints of %.0f ms and %.0f MB on average", c.last.CkN, c.last.CkS*1000/float64(c.last.CkN), float64(c.last.CkBytes)/float64(c.last.CkN)/(1<<20))
		}
		cpu = append(cpu, fmt.Sprintf("units %v: CPU %.0f s user+sys, %d records read%s", c.owned, c.last.UserS+c.last.SysS, c.last.Records, ck))
		totalRecords += c.last.Records
		c.mu.Unlock()
	}
	procs = nil
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p50, p99 := lat[len(lat)/2], lat[len(lat)-1]
	ms2 := func(d time.Duration) float64 { return d.Seconds() * 1000 }
	note := fmt.Sprintf("%d busy-loop hog(s) beside; %d instance(s), %d cells/interval, %d samples: p50 %.0f ms, p99 %.0f ms (with %d samples, the largest); %.0f records/s produced and evaluated over the measured intervals (closed loop: an interval is produced once the one before was warned of); per instance: %s; intervals: %s; load average %s",
		hogs, instances, cells, len(lat), ms2(p50), ms2(p99), len(lat), produced/wall.Seconds(), strings.Join(cpu, "; "), strings.Join(intervals, ", "), loadAverage())
	scale := "scale100"
	if cells != 262144 {
		scale = fmt.Sprintf("cells%d", cells)
	}
	name := fmt.Sprintf("warnings-scale/%s_%d_instance", scale, instances)
	if instances > 1 {
		name += "s"
	}
	if hogs > 0 {
		name += fmt.Sprintf("_%dhogs", hogs)
	}
	return []Result{
		{Name: name + "_p50", Status: "ok", Figure: ms2(p50), Unit: "ms", Rows: int64(len(lat)), Reason: note},
		{Name: name + "_p99", Status: "ok", Figure: ms2(p99), Unit: "ms", Rows: int64(len(lat)), Reason: note,
			Anchor: &Anchor{Name: "issue target p99", Figure: 2000, Unit: "ms", Ratio: ms2(p99) / 2000}},
		{Name: name + "_records_per_s", Status: "ok", Figure: produced / wall.Seconds(), Unit: "records/s", Rows: int64(produced), WallS: wall.Seconds(), Reason: note},
	}, nil
}
