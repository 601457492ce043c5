package warnings

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"citybrain/internal/broker"
	"citybrain/internal/freshness"
	"citybrain/schemas"
	"citybrain/warehouse"
)

// RunnerStats are the runner's running totals.
type RunnerStats struct {
	Batches, Records, Rejected, Transitions, FetchRetries atomic.Int64
}

// Runner feeds the engine from Kafka: every partition of every input topic
// from the offsets stored in the engine's state, in micro-batches formed by
// whatever has arrived (up to warnings.max_batch_rows), so a record is
// evaluated as soon as it is read — there is no batch period.
type Runner struct {
	Eng    *Engine
	Client *broker.Client
	Reg    *schemas.Registry
	Inputs []TopicInput
	Log    *slog.Logger
	Hub    *Hub
	// Sink and Notifier, if set, are kicked after each batch with transitions (their Run loops do the work).
	Sink     *Sink
	Notifier *Notifier
	// BeforeBatch, if set, runs before each batch (reference-data reload).
	BeforeBatch func(ctx context.Context)
	// AfterBatch, if set, runs after each batch with its transitions.
	AfterBatch func(b Batch, ts []Transition)

	Stats RunnerStats
	// Progress is how far the runner is behind its topics (GET /api/warnings "engine").
	Progress Progress
	// Fresh, if set, receives the engine's freshness (path warnings/engine)
	// and that of marts.warnings (warnings/sink), and the batch figures for /metrics.
	Fresh *freshness.Registry
	kick  chan struct{}
	once  sync.Once
}

// fetchedMsgs is one fetch response, decoded by the partition's reader (so
// decoding overlaps the engine's evaluation of the batch before).
type fetchedMsgs struct {
	topic     string
	partition int
	n         int       // messages
	next      int64     // offset after the last message
	last      time.Time // Kafka append time of the last message
	recs      []schemas.Record
	rejected  int64
	err       error
}

var errRestart = errors.New("new input topics appeared")

// idleCheckpoint is how long the runner waits without records before it
// checkpoints the engine's state. The state's WAL is checkpointed here, when
// the engine has caught up, rather than by DuckDB at whichever commit crosses
// its threshold (see Open): at scale 100 those commit-time checkpoints landed
// on the batches a warning waited for.
const idleCheckpoint = 200 * time.Millisecond

// checkpointEvery spaces the idle checkpoints: a live feed bursting every
// few seconds otherwise checkpointed the state after every burst (at
// sim.speed 60 a tenth of the engine's CPU while idle).
const checkpointEvery = 10 * time.Second

// Run reads until ctx is done; broker errors are retried with backoff.
func (r *Runner) Run(ctx context.Context) error {
	r.once.Do(func() { r.kick = make(chan struct{}, 1) })
	backoff := 500 * time.Millisecond
	for {
		err := r.runOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errRestart) {
			continue
		}
		r.Log.Error("预警引擎读取失败，稍后重试 warning engine failed; retrying", "err", err, "in", backoff)
		r.Fresh.Update(r.enginePath(), func(s *freshness.State) { s.Err = err.Error() })
		r.Fresh.Count("citybrain_warnings_errors", "Warning engine failures (restarts of its reading) / 预警引擎故障次数", 1)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

// RunSink commits the outbox to marts.warnings whenever kicked (and every
// few seconds) until ctx is done.
func (r *Runner) RunSink(ctx context.Context) error {
	r.once.Do(func() { r.kick = make(chan struct{}, 1) })
	for {
		if _, err := r.Sink.Flush(ctx); err != nil && ctx.Err() == nil {
			if errors.Is(err, ErrFenced) {
				r.Log.Error("预警单元已被其他实例接管，停止 the unit moved to another instance; stopping it", "err", err)
				return err
			}
			r.Log.Error("预警写入数据湖失败，稍后重试 writing marts.warnings failed; retrying", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
			continue
		}
		select {
		case <-ctx.Done():
			// Last flush so a graceful stop leaves nothing in the outbox.
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			r.Sink.Flush(fctx)
			cancel()
			return nil
		case <-r.kick:
		case <-time.After(5 * time.Second):
		}
	}
}

// KickSink asks the sink loop to flush now.
func (r *Runner) KickSink() {
	r.once.Do(func() { r.kick = make(chan struct{}, 1) })
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

func (r *Runner) runOnce(ctx context.Context) error {
	stored, err := r.Eng.Offsets(ctx)
	if err != nil {
		return err
	}
	schemaOf := map[string]*schemas.Schema{}
	var topics, missing []string
	for _, in := range r.Inputs {
		s, err := r.Reg.Get(in.Schema)
		if err != nil {
			return fmt.Errorf("warnings input %s: %w", in.Topic, err)
		}
		if read, _ := r.Eng.unit.Reads(s, r.Eng.rules); !read {
			continue
		}
		schemaOf[in.Topic] = s
		topics = append(topics, in.Topic)
	}
	parts, err := r.Client.Partitions(ctx, topics...)
	if err != nil {
		return err
	}
	for _, topic := range r.unitPartitions(parts, schemaOf) {
		topics = slices.DeleteFunc(topics, func(t string) bool { return t == topic })
	}
	pos := map[string]map[int]int64{}
	endOf := map[string]map[int]int64{} // the topics' ends, refreshed while behind
	fctx, cancel := context.WithCancel(ctx)
	// Room for several fetches per partition: while the engine is behind, a
	// batch takes what is waiting (up to max_batch_rows), and a deeper queue
	// gives bulk catch-up more intervals per batch.
	ch := make(chan fetchedMsgs, 16)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	for _, topic := range topics {
		if len(parts[topic]) == 0 {
			missing = append(missing, topic)
			continue
		}
		starts, err := r.Client.StartOffsets(ctx, topic)
		if err != nil {
			return err
		}
		ends, err := r.Client.EndOffsets(ctx, topic)
		if err != nil {
			return err
		}
		pos[topic] = map[int]int64{}
		endOf[topic] = ends
		for _, p := range parts[topic] {
			off, ok := stored[topic][p]
			if !ok || off < starts[p] {
				off = starts[p]
			}
			if off > ends[p] {
				r.Log.Warn("预警引擎位点超出主题末尾（代理被替换？），从头读取 engine offset beyond the topic's end (broker replaced?); reading from the start",
					"topic", topic, "partition", p, "offset", off, "end", ends[p])
				off = starts[p]
			}
			pos[topic][p] = off
			wg.Add(1)
			go func(topic string, p int, off int64) {
				defer wg.Done()
				r.fetch(fctx, topic, schemaOf[topic], p, off, ch)
			}(topic, p, off)
		}
	}
	r.Log.Info("warning engine reading", "topics", len(pos), "waiting_for", missing)
	behind := func() int64 {
		var n int64
		for topic, ps := range pos {
			for p, off := range ps {
				n += max(endOf[topic][p]-off, 0)
			}
		}
		return n
	}
	eventIdx := map[string]int{}
	for _, s := range schemaOf {
		eventIdx[s.Name] = s.EventTimeIndex()
	}
	r.Progress.start(time.Now(), behind())
	if n := behind(); n > 0 {
		r.Log.Info("预警引擎回放主题中的历史数据，预警随之出现 warning engine replaying the topics' history; warnings appear as it goes", "records", n)
	}
	var lastReport, lastFree time.Time
	recheck := time.NewTicker(10 * time.Second)
	defer recheck.Stop()
	// The topics' ends (and their newest event times) are read again every
	// endsEvery, caught up or not: "behind" and "caught up" are measured.
	ends := time.NewTicker(endsEvery)
	defer ends.Stop()
	lastEnd := map[string]map[int]int64{} // ends whose last record's event time was read
	lastRead := map[string]time.Time{}    // when a topic's last event time was read (every 5 s at most)
	readEnds := func() {
		for topic := range pos {
			e, err := r.Client.EndOffsets(ctx, topic)
			if err != nil {
				r.Fresh.Update(r.enginePath(), func(s *freshness.State) { s.Err = err.Error() })
				continue
			}
			endOf[topic] = e
			if lastEnd[topic] == nil {
				lastEnd[topic] = map[int]int64{}
			}
			if time.Since(lastRead[topic]) < 5*time.Second {
				continue
			}
			lastRead[topic] = time.Now()
			for p, off := range e {
				if off > 0 && off != lastEnd[topic][p] {
					lastEnd[topic][p] = off
					if t, ok := r.lastEventTime(ctx, topic, schemaOf[topic], p, off-1, eventIdx); ok {
						r.Progress.inputs(t)
					}
				}
			}
		}
	}
	report := func(lastDone time.Time, newest time.Time) {
		changed, caught, took := r.Progress.update(behind(), newest, lastDone, len(ch) == 0)
		r.Progress.fresh(r.Fresh)
		rep := r.Progress.Report()
		switch {
		case changed && caught:
			r.Log.Info("预警引擎已追上实时数据 warning engine caught up with its topics", "took", took.Round(time.Second), "records", r.Stats.Records.Load())
			// The replay's batches (hundreds of MB of decoded records at
			// startup) are garbage now: hand their pages back to the OS at
			// once rather than keep serve's resident set at the replay's peak.
			if time.Since(lastFree) > 10*time.Minute {
				lastFree = time.Now()
				go debug.FreeOSMemory()
			}
		case changed:
			r.Log.Warn("预警引擎落后于实时数据 warning engine fell behind its topics", "behind", rep.Behind, "lag_s", int(rep.LagS))
		case !rep.CaughtUp && time.Since(lastReport) > 10*time.Second:
			lastReport = time.Now()
			at := ""
			if rep.EventTime != nil {
				at = rep.EventTime.Format(time.RFC3339)
			}
			r.Log.Info("预警引擎回放历史 warning engine replaying history", "behind", rep.Behind, "lag_s", int(rep.LagS), "at", at)
		}
	}
	readEnds()
	report(time.Time{}, time.Time{})
	// After a batch, a checkpoint of the engine's state once nothing has
	// arrived for idleCheckpoint (between the bursts of an interval).
	var idle <-chan time.Time
	var lastCheckpoint time.Time
	for {
		var first fetchedMsgs
		select {
		case <-ctx.Done():
			return nil
		case <-idle:
			idle = nil
			if wait := checkpointEvery - time.Since(lastCheckpoint); wait > 0 {
				idle = time.After(wait)
				continue
			}
			lastCheckpoint = time.Now()
			if err := r.Eng.Checkpoint(ctx); err != nil && ctx.Err() == nil {
				r.Log.Warn("预警状态库检查点失败，稍后重试 warnings state checkpoint failed; will retry", "err", err)
				idle = time.After(idleCheckpoint)
			}
			continue
		case <-ends.C:
			readEnds()
			report(time.Time{}, time.Time{})
			continue
		case <-recheck.C:
			if len(missing) > 0 {
				if ps, err := r.Client.Partitions(ctx, missing...); err == nil && len(ps) > 0 {
					return errRestart
				}
			}
			continue
		case first = <-ch:
		}
		got := []fetchedMsgs{first}
		n := first.n
		started := time.Now()
		deadline := started.Add(lingerMax)
	drain:
		for n < r.Eng.cfg.MaxBatchRows {
			select {
			case f := <-ch:
				got = append(got, f)
				n += f.n
				continue
			default:
			}
			// Nothing waiting. A windowed input read from several partitions (the
			// district unit, or one engine over a topic of several partitions) waits a
			// little for the partitions that delivered nothing yet: an interval's
			// records are written to every partition at once, and a venue evaluated on
			// the cells of some partitions only would be seen lower than it is.
			if wait := r.alignWait(got, pos, schemaOf, started); wait > 0 {
				select {
				case f := <-ch:
					got = append(got, f)
					n += f.n
					continue
				case <-time.After(wait):
				case <-ctx.Done():
					return nil
				}
			}
			// While the topics hold more than this batch (the engine is
			// behind), wait a little for it: a fuller batch of many intervals is evaluated in
			// bulk, far cheaper per interval, so a busy engine catches up instead of
			// evaluating one interval at a time behind the data. At the live edge there is
			// nothing more in the topics and nothing waits.
			wait := time.Until(deadline)
			if wait <= 0 || behind()-int64(n) <= 0 {
				break drain
			}
			select {
			case f := <-ch:
				got = append(got, f)
				n += f.n
			case <-time.After(wait):
				break drain
			case <-ctx.Done():
				return nil
			}
		}
		td := time.Now()
		b := Batch{Records: map[string][]schemas.Record{}, Offsets: map[string]map[int]int64{}}
		for _, f := range got {
			if f.err != nil {
				return f.err
			}
			s := schemaOf[f.topic]
			b.Records[s.Name] = append(b.Records[s.Name], f.recs...)
			r.Stats.Rejected.Add(f.rejected)
			pos[f.topic][f.partition] = f.next
			if b.Offsets[f.topic] == nil {
				b.Offsets[f.topic] = map[int]int64{}
			}
			b.Offsets[f.topic][f.partition] = pos[f.topic][f.partition]
		}
		r.Eng.ph.Since("batch", td)
		if r.BeforeBatch != nil {
			r.BeforeBatch(ctx)
		}
		tp := time.Now()
		ts, err := r.Eng.Process(ctx, b)
		if err != nil {
			return err
		}
		r.Log.Debug("warning batch", "rows", b.Rows(), "transitions", len(ts), "gather", tp.Sub(td), "process", time.Since(tp))
		idle = time.After(idleCheckpoint)
		r.Stats.Batches.Add(1)
		r.Stats.Records.Add(int64(b.Rows()))
		r.Stats.Transitions.Add(int64(len(ts)))
		if r.Hub != nil {
			r.Hub.Publish(ts)
		}
		if len(ts) > 0 {
			select {
			case r.kick <- struct{}{}:
			default:
			}
			if r.Notifier != nil {
				r.Notifier.Kick()
			}
		}
		if r.AfterBatch != nil {
			r.AfterBatch(b, ts)
		}
		var lastDone time.Time
		for _, f := range got {
			if f.last.After(lastDone) {
				lastDone = f.last
			}
		}
		report(lastDone, newestEventTime(b, eventIdx))
		if r.Fresh != nil {
			r.Fresh.Update(r.enginePath(), func(s *freshness.State) { s.Err = "" })
			r.Fresh.Observe("citybrain_warnings_batch_records", "Records per warning engine batch / 预警引擎每批记录数", float64(b.Rows()))
			r.Fresh.Observe("citybrain_warnings_batch_seconds", "Warning engine batch durations / 预警引擎每批耗时", time.Since(tp).Seconds())
			if len(ts) > 0 {
				r.Fresh.Pending(r.sinkPath(), time.Now())
				r.Fresh.Count("citybrain_warnings_transitions", "Warning transitions / 预警状态变化数", float64(len(ts)))
			}
		}
	}
}

// unitPartitions keeps, of a cell unit's topics, the unit's partition: partition
// k of every routed input holds the same cells, sensors or stations (unit.go).
// A topic whose partition count is not the engine's is not read (an error
// in the log and the unit's freshness): its keys would be spread differently.
func (r *Runner) unitPartitions(parts map[string][]int, schemaOf map[string]*schemas.Schema) (skipped []string) {
	u := r.Eng.unit
	if !u.Partitioned() {
		return nil
	}
	for topic, ps := range parts {
		if len(ps) == 0 {
			continue
		}
		if _, whole := u.Reads(schemaOf[topic], r.Eng.rules); whole {
			continue
		}
		if len(ps) != u.Count-1 {
			// Not read rather than read wrong; the other inputs go on.
			err := fmt.Errorf("主题 %s 有 %d 个分区，分区预警引擎需要 %d，未读取 topic %s has %d partitions, the partitioned warning engine %d (broker.partitions): "+
				"its keys are spread differently, so it is not read; recreate it with %d partitions", topic, len(ps), u.Count-1, topic, len(ps), u.Count-1, u.Count-1)
			r.Log.Error("预警输入主题分区数不符 warnings input topic has the wrong partition count", "err", err)
			r.Fresh.Update(r.enginePath(), func(s *freshness.State) { s.Err = err.Error() })
			delete(parts, topic)
			skipped = append(skipped, topic)
			continue
		}
		parts[topic] = []int{u.Index}
	}
	return skipped
}

func (r *Runner) enginePath() freshness.Path {
	if r.Progress.Path != (freshness.Path{}) {
		return r.Progress.Path
	}
	return EnginePath
}

func (r *Runner) sinkPath() freshness.Path {
	if r.Sink != nil {
		return r.Sink.path()
	}
	return SinkPath
}

// alignMax is the longest a batch waits for the other partitions of a
// windowed input (alignWait).
const alignMax = 150 * time.Millisecond

// alignWait is how long the batch in got should wait for partitions of a
// windowed input that delivered nothing yet (0: none missing, or waited enough).
func (r *Runner) alignWait(got []fetchedMsgs, pos map[string]map[int]int64, schemaOf map[string]*schemas.Schema, started time.Time) time.Duration {
	from := map[string]map[int]bool{}
	for _, f := range got {
		if _, ok := windowed[schemaOf[f.topic].Name]; !ok || len(pos[f.topic]) < 2 {
			continue
		}
		if from[f.topic] == nil {
			from[f.topic] = map[int]bool{}
		}
		from[f.topic][f.partition] = true
	}
	for topic, ps := range from {
		if len(ps) < len(pos[topic]) {
			return alignMax - time.Since(started)
		}
	}
	return 0
}

// lingerMax is the longest a batch waits to fill while the engine is behind.
const lingerMax = 250 * time.Millisecond

// endsEvery is how often the runner reads its topics' ends.
const endsEvery = 2 * time.Second

// liveWait is how long a fetch waits at a partition's end for a first
// record: the broker answers as soon as one arrives (no latency), and an
// idle engine does not poll.
const liveWait = 5 * time.Second

// lastEventTime reads the event time of the record at off (a partition's
// last record), within a second; ok is false when it cannot.
func (r *Runner) lastEventTime(ctx context.Context, topic string, s *schemas.Schema, p int, off int64, eventIdx map[string]int) (time.Time, bool) {
	i, ok := eventIdx[s.Name]
	if !ok || i < 0 {
		return time.Time{}, false
	}
	rctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var t time.Time
	errDone := errors.New("done")
	r.Client.ReadPartition(rctx, topic, p, off, 1<<20, 50*time.Millisecond, func(msgs []kafka.Message) error {
		for _, m := range msgs {
			if m.Offset != off {
				continue
			}
			if rec, err := s.Decode(m.Value); err == nil {
				t, _ = rec[i].(time.Time)
			}
		}
		return errDone
	})
	return t, !t.IsZero()
}

// fetch reads one partition from off and hands whole fetch responses,
// decoded, to the loop. A failed fetch (a dropped connection, a broker
// restart) is retried from the next offset with backoff: it never restarts
// the engine's reading of every topic. Only an offset the broker no longer
// has goes to the loop, which then re-reads the topics' starts.
func (r *Runner) fetch(ctx context.Context, topic string, s *schemas.Schema, p int, off int64, ch chan<- fetchedMsgs) {
	backoff := 200 * time.Millisecond
	for ctx.Err() == nil {
		err := r.Client.ReadPartition(ctx, topic, p, off, 8<<20, liveWait, func(msgs []kafka.Message) error {
			td := time.Now()
			last := msgs[len(msgs)-1]
			f := fetchedMsgs{topic: topic, partition: p, n: len(msgs), next: last.Offset + 1, last: last.Time, recs: make([]schemas.Record, 0, len(msgs))}
			for _, m := range msgs {
				rec, err := s.Decode(m.Value)
				if err == nil {
					err = s.Validate(rec)
				}
				if err != nil {
					// The lake writer dead-letters it; the engine only skips it.
					f.rejected++
					continue
				}
				f.recs = append(f.recs, rec)
			}
			r.Eng.ph.Since("decode", td)
			// Arrived and not yet evaluated: the engine is behind from the first message's append time.
			r.Progress.pending(msgs[0].Time)
			select {
			case ch <- f:
				off, backoff = f.next, 200*time.Millisecond
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		if err == nil || ctx.Err() != nil {
			return
		}
		if errors.Is(err, kafka.OffsetOutOfRange) {
			select {
			case ch <- fetchedMsgs{topic: topic, partition: p, err: err}:
			case <-ctx.Done():
			}
			return
		}
		r.Stats.FetchRetries.Add(1)
		r.Fresh.Count("citybrain_warnings_fetch_errors", "Warning engine fetches retried / 预警引擎读取重试次数", 1, "topic", topic)
		r.Log.Warn("预警引擎读取失败，从同一位点重试 warning engine fetch failed; retrying from the same offset", "topic", topic, "partition", p, "offset", off, "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

// ResolveInputs lists the topics to read: raw.<source> of every configured
// source whose schema is an engine input, plus warnings.topics.
func ResolveInputs(sourceSchemas map[string]string, extra []TopicInput) []TopicInput {
	isInput := map[string]bool{}
	for _, in := range Inputs {
		isInput[in] = true
	}
	seen := map[string]bool{}
	var out []TopicInput
	names := make([]string, 0, len(sourceSchemas))
	for n := range sourceSchemas {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if isInput[sourceSchemas[n]] {
			out = append(out, TopicInput{Topic: "raw." + n, Schema: sourceSchemas[n]})
			seen["raw."+n] = true
		}
	}
	for _, t := range extra {
		if !seen[t.Topic] {
			out = append(out, t)
			seen[t.Topic] = true
		}
	}
	return out
}

// DefaultTopics are raw.<schema> of every input, read when they exist
// (the simulator and upstream Kafka feeds produce to them directly).
func DefaultTopics() []TopicInput {
	out := make([]TopicInput, 0, len(Inputs))
	for _, in := range Inputs {
		out = append(out, TopicInput{Topic: "raw." + in, Schema: in})
	}
	return out
}

// Local is one process's warning engine: the engine over its state file,
// the Kafka runner, the sink into marts.warnings and the notifier.
type Local struct {
	Eng      *Engine
	Runner   *Runner
	Sink     *Sink
	Notifier *Notifier
	Hub      *Hub
}

// NewLocal opens the engine's state in dir and wires the parts.
func NewLocal(ctx context.Context, cfg Config, dir string, lake *warehouse.Lake, client *broker.Client, reg *schemas.Registry, inputs []TopicInput, log *slog.Logger) (*Local, error) {
	eng, err := Open(ctx, cfg, filepath.Join(dir, "state.duckdb"), reg, log, time.Now)
	if err != nil {
		return nil, err
	}
	sink, err := NewSink(eng, lake, reg)
	if err != nil {
		eng.Close()
		return nil, err
	}
	l := &Local{Eng: eng, Sink: sink, Hub: NewHub(), Notifier: NewNotifier(eng, cfg, filepath.Join(dir, "dead_letters.jsonl"), log)}
	l.Runner = &Runner{Eng: eng, Client: client, Reg: reg, Inputs: inputs, Log: log, Hub: l.Hub, Sink: sink, Notifier: l.Notifier}
	return l, nil
}

// Run reads, evaluates, commits and notifies until ctx is done, then closes the engine.
func (l *Local) Run(ctx context.Context) error {
	defer l.Eng.Close()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); l.Runner.RunSink(ctx) }()
	go func() { defer wg.Done(); l.Notifier.Run(ctx) }()
	err := l.Runner.Run(ctx)
	wg.Wait()
	return err
}
