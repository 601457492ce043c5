package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"citybrain/connectors"
	"citybrain/internal/benchrun/benchdata"
	"citybrain/internal/broker"
	"citybrain/internal/testenv"
	"citybrain/pipelines/lakewriter"
	"citybrain/schemas"
	"citybrain/warehouse"
)

// The lake writers of one table on 1 and 2 instances (issue #23, item 4).
func init() {
	registerSuite(Suite{
		Name: "lakewriter-group",
		Doc: `The lake writers of one table on 1 and on 2 instances (docs/roles.md; lake_writer.partitioned), each a process of its
own (benchrun -child-lakegroup) in the consumer group citybrain-lake-bench_signal: 2,000,000 mobile-signal records keyed by
cell over 6 partitions of the embedded broker, produced beforehand, written to one table of a lake on the SQL catalog in
PostgreSQL; a writer reads once the group gives it no more than its share. Wall time from the writers sharing the
partitions to the table holding every record (its committed offsets at the topic's ends);
commits, commits merged after losing the race to the other writer, and CPU per instance. On 2 cores the two writers share
the cores with the broker and PostgreSQL: reported as measured.`,
		Reproduce: "go run ./internal/benchrun -suite lakewriter-group",
		Run:       runLakeGroupBench,
	})
}

const lakeGroupParts = 6

// lakeGroupOut is a lake-writer child's output: its partitions, and at exit its totals.
type lakeGroupOut struct {
	Owned    []int   `json:"owned,omitempty"`
	OwnedSet bool    `json:"owned_set,omitempty"`
	Done     bool    `json:"done,omitempty"`
	Rows     int64   `json:"rows,omitempty"`
	Commits  int64   `json:"commits,omitempty"`
	Merges   int64   `json:"merges,omitempty"`
	UserS    float64 `json:"user_s,omitempty"`
	SysS     float64 `json:"sys_s,omitempty"`
}

// runLakeGroupChild is one instance's lake writer of raw.bench_signal in the group.
func runLakeGroupChild(ctx context.Context, dir, dsn, bootstrap string, instances int) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	lake, err := warehouse.Open(ctx, scaleLakeConfig(dir, dsn), dir, log)
	if err != nil {
		return err
	}
	defer lake.Close()
	s, err := benchdata.Schema()
	if err != nil {
		return err
	}
	bcfg := broker.DefaultConfig()
	bcfg.Partitions = lakeGroupParts
	w := lakewriter.New(lakewriter.DefaultConfig(), lake, broker.NewClient([]string{bootstrap}, bcfg), benchdata.Source, s, log)
	defer w.Close()
	// Read once the writers share the topic: a generation of fewer members
	// gives this one more than its share.
	w.Ready = func(parts []int) bool { return len(parts) <= (lakeGroupParts+instances-1)/instances }
	var mu sync.Mutex
	out := json.NewEncoder(os.Stdout)
	emit := func(v lakeGroupOut) { mu.Lock(); out.Encode(v); mu.Unlock() }
	stop := make(chan struct{})
	go func() {
		var last string
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if o := w.Owned(); o != nil && fmt.Sprint(o) != last {
				last = fmt.Sprint(o)
				emit(lakeGroupOut{Owned: o, OwnedSet: true})
			}
		}
	}()
	err = w.RunGroup(ctx, 10*time.Second)
	close(stop)
	u, sy, _ := rusage()
	emit(lakeGroupOut{Done: true, Rows: w.Stats.Rows.Load(), Commits: w.Stats.Commits.Load(), Merges: w.Stats.Merges.Load(), UserS: u.Seconds(), SysS: sy.Seconds()})
	return err
}

func runLakeGroupBench(ctx context.Context, tmp string) []Result {
	pg, err := testenv.StartPostgres(ctx, filepath.Join(tmp, "pg"))
	if err != nil {
		return []Result{{Name: "lakewriter-group/2_instances_rows_per_s", Status: "failed", Reason: "PostgreSQL: " + err.Error(), Unit: "rows/s"}}
	}
	defer pg.Stop()
	rows := 2_000_000
	if v, err := strconv.Atoi(os.Getenv("CITYBRAIN_BENCH_LAKEGROUP_ROWS")); err == nil && v > 0 {
		rows = v
	}
	var out []Result
	for _, n := range []int{1, 2} {
		dsn, err := createDatabase(ctx, pg.DSN(), fmt.Sprintf("citybrain_lakegroup_%d", n))
		var r Result
		if err == nil {
			r, err = measureLakeGroup(ctx, filepath.Join(tmp, fmt.Sprintf("lakegroup-%d", n)), dsn, n, rows)
		}
		if err != nil {
			r = Result{Name: fmt.Sprintf("lakewriter-group/%d_instance_rows_per_s", n), Status: "failed", Reason: err.Error(), Unit: "rows/s"}
		}
		out = append(out, r)
	}
	return out
}

func measureLakeGroup(ctx context.Context, dir, dsn string, instances, rows int) (Result, error) {
	name := fmt.Sprintf("lakewriter-group/%d_instance_rows_per_s", instances)
	if instances > 1 {
		name = fmt.Sprintf("lakewriter-group/%d_instances_rows_per_s", instances)
	}
	log := slog.New(slog.DiscardHandler)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Result{}, err
	}
	emb, err := broker.StartEmbedded(dir, 0, log)
	if err != nil {
		return Result{}, err
	}
	defer emb.Close()
	bcfg := broker.DefaultConfig()
	bcfg.Partitions = lakeGroupParts
	client := broker.NewClient([]string{emb.Addr()}, bcfg)
	topic := connectors.RawTopic(benchdata.Source)
	if err := client.EnsureTopics(ctx, topic, connectors.DLQTopic(benchdata.Source)); err != nil {
		return Result{}, err
	}
	s, err := benchdata.Schema()
	if err != nil {
		return Result{}, err
	}
	// The records, keyed by cell (the schema's route_by), before the writers start.
	tp := time.Now()
	var bytes int64
	w := client.Writer(topic)
	for from := 0; from < rows; from += benchdata.ChunkRows {
		msgs, b := benchdata.Chunk(s, rows, from, min(from+benchdata.ChunkRows, rows))
		for i := range msgs {
			msgs[i].Key = routeKey(s, msgs[i].Value)
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			w.Close()
			return Result{}, err
		}
		bytes += b
	}
	w.Close()
	ends, err := client.EndOffsets(ctx, topic)
	if err != nil {
		return Result{}, err
	}
	used := 0
	for _, e := range ends {
		if e > 0 {
			used++
		}
	}
	produced := time.Since(tp)
	var children []*groupChild
	last := map[*groupChild]*lakeGroupOut{}
	defer func() {
		for _, c := range children {
			c.cmd.Process.Kill()
			<-c.done
		}
	}()
	for i := 0; i < instances; i++ {
		out := &lakeGroupOut{}
		c, err := startGroupChild(ctx, []string{"-child-lakegroup", "-data", dir, "-dsn", dsn, "-bootstrap", emb.Addr(), "-instances", fmt.Sprint(instances)}, func(c *groupChild, b []byte) {
			var o lakeGroupOut
			if json.Unmarshal(b, &o) != nil {
				return
			}
			if o.OwnedSet {
				c.owned = o.Owned
			}
			if o.Done {
				*out = o
			}
		})
		if err != nil {
			return Result{}, err
		}
		children = append(children, c)
		last[c] = out
	}
	share := time.Now().Add(3 * time.Minute)
	for !shared(children, lakeGroupParts) {
		if time.Now().After(share) {
			return Result{}, fmt.Errorf("%d writers did not share the %d partitions within 3 minutes", instances, lakeGroupParts)
		}
		time.Sleep(20 * time.Millisecond)
	}
	start := time.Now()
	lake, err := warehouse.Open(ctx, scaleLakeConfig(dir, dsn), dir, log)
	if err != nil {
		return Result{}, err
	}
	defer lake.Close()
	// Timed from the writers sharing the partitions (each reads once it has
	// its share) to every partition's offset committed.
	deadline := start.Add(20 * time.Minute)
	for {
		st, err := lake.State(ctx, s.Table)
		if err == nil && caughtUpTo(st.Offsets[topic], ends) {
			break
		}
		if time.Now().After(deadline) {
			return Result{}, fmt.Errorf("the lake did not hold the topic after 20 minutes")
		}
		time.Sleep(100 * time.Millisecond)
	}
	wall := time.Since(start)
	var per []string
	var cpu float64
	var commits, merges, written int64
	for _, c := range children {
		c.stop(60 * time.Second)
		c.mu.Lock()
		l := last[c]
		per = append(per, fmt.Sprintf("partitions %v: %d rows in %d commits (%d merged), CPU %.1f s", c.owned, l.Rows, l.Commits, l.Merges, l.UserS+l.SysS))
		cpu += l.UserS + l.SysS
		commits += l.Commits
		merges += l.Merges
		written += l.Rows
		c.mu.Unlock()
	}
	children = nil
	status, note := "ok", ""
	if written != int64(rows) {
		status, note = "failed", fmt.Sprintf("; the writers wrote %d rows, want %d", written, rows)
	}
	return Result{Name: name, Status: status, Figure: float64(rows) / wall.Seconds(), Unit: "rows/s", Rows: int64(rows), WallS: wall.Seconds(), CPUS: cpu,
		RowsPerS: float64(rows) / wall.Seconds(), MBPerS: float64(bytes) / (1 << 20) / wall.Seconds(), Commits: commits,
		Reason: fmt.Sprintf("%d instance(s), %d partitions (%d with records); produced beforehand in %.1f s; in the lake %.1f s after the writers shared the partitions; %d commits, %d merged after a lost race; per instance: %s; load average %s%s",
			instances, lakeGroupParts, used, produced.Seconds(), wall.Seconds(), commits, merges, strings.Join(per, "; "), loadAverage(), note)}, nil
}

// routeKey is a record's partition key: its route_by field (grid_cell_id).
func routeKey(s *schemas.Schema, value []byte) []byte {
	rec, err := s.Decode(value)
	if err != nil {
		return nil
	}
	if v, ok := rec[s.RouteIndex()].(string); ok {
		return []byte(v)
	}
	return nil
}

func caughtUpTo(at map[int]int64, ends broker.Offsets) bool {
	for p, e := range ends {
		if at[p] < e {
			return false
		}
	}
	return len(ends) > 0
}
