package warnings

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"citybrain/internal/broker"
	"citybrain/internal/freshness"
	"citybrain/schemas"
	"citybrain/warehouse"
)

// UnitsTopic is the topic whose partitions stand for a partitioned engine's
// units: partition k is unit k (P cell units and the district unit). The
// instances of the consumer group GroupID share them; no record is ever
// written to it — the group protocol is used for ownership only.
const UnitsTopic = "citybrain.warnings.units"

// GroupID is the warning instances' consumer group.
const GroupID = "citybrain-warnings"

// Group runs the units of a partitioned warning engine that this instance
// owns (docs/roles.md): it joins the consumer group over UnitsTopic; for each
// generation it restores each unit given to it (the newest checkpoint, or
// the local state it left there if that is still the newest), runs its
// runner, sink and notifier, checkpoints it every CheckpointEvery and at the
// end of the generation (a clean hand-over), and stops it when the group
// rebalances.
type Group struct {
	Cfg        Config
	Client     *broker.Client
	Reg        *schemas.Registry
	Lake       *warehouse.Lake
	Log        *slog.Logger
	Hub        *Hub
	Inputs     []TopicInput
	Fresh      *freshness.Registry
	Dir        string // the units' local state files
	Partitions int    // P: the partition count of the routed input topics
	// Checkpoints is where the units' checkpoints are kept.
	Checkpoints *Checkpoints
	// CheckpointEvery spaces a unit's checkpoints (and so its commits to marts.warnings).
	CheckpointEvery time.Duration
	// SessionTimeout: an instance silent this long loses its units.
	SessionTimeout time.Duration
	// Reference loads the reference data into a unit's engine before its first
	// batch and again whenever RefVersion changes.
	Reference  func(ctx context.Context, eng *Engine) error
	RefVersion func() int64
	// OnCommit is called after each commit to marts.warnings.
	OnCommit func(ctx context.Context, snapshot int64)
	// OnOwned, if set, is told the units owned after each change (for the heartbeats).
	OnOwned func(units []int)

	// Stats are the owned units' running totals (records evaluated, transitions).
	Stats struct {
		Records, Transitions atomic.Int64
		// Checkpoints made, their total time and bytes.
		Checkpoints, CheckpointNanos, CheckpointBytes atomic.Int64
	}

	mu      sync.Mutex
	running map[int]*unitRun
	gens    atomic.Int64
}

// unitRun is one owned unit's engine and loops.
type unitRun struct {
	unit   Unit
	eng    *Engine
	runner *Runner
	sink   *Sink
	notif  *Notifier
	limit  atomic.Int64
}

// Units is the unit count (P+1).
func (g *Group) Units() int { return g.Partitions + 1 }

// Run joins the group and runs the owned units until ctx is done.
func (g *Group) Run(ctx context.Context) error {
	if err := g.Client.EnsureTopicsWith(ctx, g.Units(), UnitsTopic); err != nil {
		return err
	}
	if ps, err := g.Client.Partitions(ctx, UnitsTopic); err == nil && len(ps[UnitsTopic]) != g.Units() {
		return fmt.Errorf("主题 %s 有 %d 个分区，需要 %d topic %s has %d partitions, want %d (broker.partitions + 1): delete it and start again",
			UnitsTopic, len(ps[UnitsTopic]), g.Units(), UnitsTopic, len(ps[UnitsTopic]), g.Units())
	}
	broker.Rejoin(ctx, g.member, func(err error, backoff time.Duration) {
		g.Log.Warn("预警实例重新加入消费组 warning instance rejoining its consumer group", "err", err, "in", backoff)
	})
	return nil
}

// member is one membership of the group, until an error or ctx.
func (g *Group) member(ctx context.Context) error {
	cg, err := g.Client.ConsumerGroup(GroupID, []string{UnitsTopic}, g.SessionTimeout, func(m string) { g.Log.Debug(m) })
	if err != nil {
		return err
	}
	defer cg.Close()
	// A fenced unit ends the membership at once (Next returns): the group is
	// left and joined again, with the units the coordinator gives then.
	fenced := make(chan error, 1)
	mctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var fenceErr error
	go func() {
		select {
		case fenceErr = <-fenced:
			cancel()
		case <-mctx.Done():
		}
	}()
	for {
		gen, err := cg.Next(mctx)
		if err != nil {
			if fenceErr != nil {
				return fenceErr
			}
			return err
		}
		var units []int
		for _, a := range gen.Assignments[UnitsTopic] {
			units = append(units, a.ID)
		}
		sort.Ints(units)
		g.Log.Info("预警实例分得单元 warning instance owns units", "generation", gen.ID, "units", unitNames(units, g.Units()))
		if g.OnOwned != nil {
			g.OnOwned(units)
		}
		for _, k := range units {
			u := Unit{Index: k, Count: g.Units()}
			gen.Start(func(ctx context.Context) {
				// A unit that fails (its checkpoint not readable, the catalog
				// not answering) is started again while the generation lasts;
				// one fenced by a newer owner makes this instance rejoin.
				backoff := time.Second
				for {
					err := g.runUnit(ctx, u)
					if err == nil || ctx.Err() != nil {
						return
					}
					if errors.Is(err, ErrFenced) {
						g.Log.Error("预警单元已被其他实例接管 warning unit fenced by a newer owner; rejoining", "unit", u.Name(), "err", err)
						select {
						case fenced <- err:
						default:
						}
						return
					}
					g.Log.Error("预警单元出错，稍后重启 warning unit failed; starting it again", "unit", u.Name(), "err", err, "in", backoff)
					select {
					case <-ctx.Done():
						return
					case <-time.After(backoff):
					}
					backoff = min(backoff*2, 30*time.Second)
				}
			})
		}
	}
}

func unitNames(units []int, count int) string {
	var names []string
	for _, k := range units {
		names = append(names, Unit{Index: k, Count: count}.Name())
	}
	return strings.Join(names, ",")
}

// Owned lists the units running here.
func (g *Group) Owned() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []int
	for k := range g.running {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}

// Active is the active warnings of the units running here.
func (g *Group) Active() []Transition {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := []Transition{}
	for _, r := range g.running {
		out = append(out, r.eng.Active()...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out
}

// localPath is the unit's state file here; stampPath names the checkpoint it started from.
func (g *Group) localPath(u Unit) string { return filepath.Join(g.Dir, u.Name()+".duckdb") }
func (g *Group) stampPath(u Unit) string { return filepath.Join(g.Dir, u.Name()+".checkpoint") }

// restore makes the unit's local state the newest: the local file when it
// started from the newest checkpoint (this instance was its last owner),
// else the newest checkpoint downloaded, else an empty state. It returns the
// fencing generation of this ownership (above every one recorded).
//
// The generation is recorded in marts.warnings (a position commit, no data)
// before the checkpoints are listed: from then on the previous owner — a
// zombie paused past the session timeout — cannot commit, so every
// transition the table holds is covered by a checkpoint already uploaded,
// and the one restored is at least that new.
func (g *Group) restore(ctx context.Context, u Unit) (Checkpoint, int64, error) {
	if err := os.MkdirAll(g.Dir, 0o755); err != nil {
		return Checkpoint{}, 0, err
	}
	cp, _, err := g.Checkpoints.Latest(ctx, u)
	if err != nil {
		return Checkpoint{}, 0, fmt.Errorf("预警检查点不可读 list warnings checkpoints: %w", err)
	}
	gen, err := g.fence(ctx, u, cp.Gen)
	if err != nil {
		return Checkpoint{}, 0, err
	}
	cp, ok, err := g.Checkpoints.Latest(ctx, u)
	if err != nil {
		return Checkpoint{}, 0, fmt.Errorf("预警检查点不可读 list warnings checkpoints: %w", err)
	}
	local, stamp := g.localPath(u), g.stampPath(u)
	b, stampErr := os.ReadFile(stamp)
	_, localErr := os.Stat(local)
	switch {
	case stampErr == nil && localErr == nil && string(b) == cp.Key:
		g.Log.Info("预警单元沿用本地状态 warning unit continues from its local state", "unit", u.Name(), "checkpoint", cp.Key)
	case ok:
		t := time.Now()
		if err := g.Checkpoints.Fetch(ctx, cp, local); err != nil {
			return Checkpoint{}, 0, err
		}
		g.Log.Info("预警单元从检查点恢复 warning unit restored from its checkpoint", "unit", u.Name(), "checkpoint", cp.Key, "took", time.Since(t).Round(time.Millisecond))
	default:
		os.Remove(local)
		os.Remove(local + ".wal")
		g.Log.Info("预警单元无检查点，从头开始 warning unit has no checkpoint; starting empty", "unit", u.Name())
	}
	if err := os.WriteFile(stamp, []byte(cp.Key), 0o644); err != nil {
		return Checkpoint{}, 0, err
	}
	return cp, gen, nil
}

// fence records the unit's new generation — one above the newest
// checkpoint's (cpGen) and the table's — in marts.warnings' position and
// returns it. A lost race with another commit is tried again on the new
// snapshot; a newer generation recorded meanwhile is ErrFenced.
func (g *Group) fence(ctx context.Context, u Unit, cpGen int64) (int64, error) {
	s, err := g.Reg.Get("warnings")
	if err != nil {
		return 0, err
	}
	key := u.key(genCursorKey)
	gen := int64(-1)
	for try := 0; ; try++ {
		t, err := g.Lake.EnsureTable(ctx, s)
		if err != nil {
			return 0, err
		}
		st, err := warehouse.StateOf(t)
		if err != nil {
			return 0, err
		}
		if gen < 0 {
			gen = max(cpGen, st.Cursors[key]) + 1
		} else if st.Cursors[key] >= gen {
			return 0, fmt.Errorf("%w: %s generation %d recorded while taking it over with %d", ErrFenced, u.Name(), st.Cursors[key], gen)
		}
		next := st.Clone()
		next.Cursors[key] = gen
		err = g.Lake.CommitPosition(ctx, Table, next)
		if err == nil {
			return gen, nil
		}
		if !errors.Is(err, warehouse.ErrConflict) || try >= 50 {
			return 0, fmt.Errorf("预警分区接管未能记录 record the generation of %s: %w", u.Name(), err)
		}
		time.Sleep(time.Duration(rand.IntN(20*(try+1))) * time.Millisecond)
	}
}

// runUnit runs one owned unit until ctx ends (its generation) or it fails.
func (g *Group) runUnit(ctx context.Context, u Unit) error {
	cp, gen, err := g.restore(ctx, u)
	if err != nil {
		return err
	}
	log := g.Log.With("unit", u.Name())
	eng, err := OpenUnit(ctx, g.Cfg, g.localPath(u), g.Reg, log, time.Now, u)
	if err != nil {
		return err
	}
	defer eng.Close()
	r := &unitRun{unit: u, eng: eng}
	r.limit.Store(max(cp.Seq, 0))
	sink, err := NewSink(eng, g.Lake, g.Reg)
	if err != nil {
		return err
	}
	sink.Gen, sink.Limit, sink.OnCommit, sink.Fresh = gen, r.limit.Load, g.OnCommit, g.Fresh
	if err := sink.RaiseSeq(ctx); err != nil {
		return err
	}
	sink.Path = freshness.Path{Component: "warnings", Name: "sink/" + u.Name(), Table: Table}
	r.sink = sink
	r.notif = NewNotifier(eng, g.Cfg, filepath.Join(g.Dir, u.Name()+".dead_letters.jsonl"), log)
	var refVer int64 = -1
	r.runner = &Runner{Eng: eng, Client: g.Client, Reg: g.Reg, Inputs: g.Inputs, Log: log, Hub: g.Hub, Sink: sink, Notifier: r.notif, Fresh: g.Fresh,
		BeforeBatch: func(ctx context.Context) {
			if g.Reference == nil {
				return
			}
			// Once per version of the reference tables, as the single engine does.
			if v := g.RefVersion(); v != refVer {
				refVer = v
				if err := g.Reference(ctx, eng); err != nil {
					log.Warn("场所/网格参考数据未载入 reference data not loaded; crowd warnings per venue wait for raw.venues, raw.venue_cells", "err", err)
				}
			}
		}}
	r.runner.AfterBatch = func(b Batch, ts []Transition) {
		g.Stats.Records.Add(int64(b.Rows()))
		g.Stats.Transitions.Add(int64(len(ts)))
	}
	r.runner.Progress.Path = freshness.Path{Component: "warnings", Name: "engine/" + u.Name()}
	g.mu.Lock()
	if g.running == nil {
		g.running = map[int]*unitRun{}
	}
	g.running[u.Index] = r
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		delete(g.running, u.Index)
		g.mu.Unlock()
	}()

	uctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	wg.Add(3)
	go func() { defer wg.Done(); r.runner.Run(uctx) }()
	go func() {
		defer wg.Done()
		if err := r.runner.RunSink(uctx); err != nil {
			errc <- err
			cancel()
		}
	}()
	go func() { defer wg.Done(); r.notif.Run(uctx) }()
	every := g.CheckpointEvery
	if every <= 0 {
		every = time.Minute
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	checkpoint := func(ctx context.Context) error {
		t := time.Now()
		c, err := g.Checkpoints.Save(ctx, eng, gen)
		if err != nil {
			return err
		}
		if err := os.WriteFile(g.stampPath(u), []byte(c.Key), 0o644); err != nil {
			return err
		}
		r.limit.Store(c.Seq)
		g.Stats.Checkpoints.Add(1)
		g.Stats.CheckpointNanos.Add(int64(time.Since(t)))
		if fi, err := os.Stat(g.localPath(u)); err == nil {
			g.Stats.CheckpointBytes.Add(fi.Size())
		}
		g.Fresh.Observe("citybrain_warnings_checkpoint_seconds", "Warning unit checkpoint durations / 预警单元检查点耗时", time.Since(t).Seconds())
		log.Debug("warning unit checkpoint", "key", c.Key, "took", time.Since(t))
		return nil
	}
	for {
		select {
		case <-tick.C:
			if err := checkpoint(uctx); err != nil {
				log.Warn("预警单元检查点失败，稍后重试 warning unit checkpoint failed; will retry", "err", err)
				continue
			}
			r.runner.KickSink()
			continue
		case <-uctx.Done():
		}
		break
	}
	cancel()
	wg.Wait()
	select {
	case err := <-errc:
		return err // fenced: no hand-over checkpoint (the unit is another instance's)
	default:
	}
	// A clean hand-over: the state checkpointed and its transitions committed,
	// so the next owner starts where this one stopped.
	hctx, hcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer hcancel()
	if err := checkpoint(hctx); err != nil {
		log.Warn("预警单元交接检查点失败 warning unit hand-over checkpoint failed; the next owner replays from the one before", "err", err)
		return nil
	}
	if _, err := sink.Flush(hctx); err != nil {
		log.Warn("预警单元交接时写入失败 warning unit hand-over commit failed; the next owner commits it", "err", err)
	}
	return nil
}
