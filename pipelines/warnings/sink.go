package warnings

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"citybrain/internal/freshness"
	"citybrain/schemas"
	"citybrain/warehouse"
)

// Table is the Iceberg table of transitions.
const Table = "marts.warnings"

// cursorKey names the outbox sequence in the table's snapshot summary.
const cursorKey = "warnings.seq"

// genCursorKey names a unit's owner generation in the summary (unit.key adds the unit).
const genCursorKey = "warnings.gen"

// Sink moves the outbox into marts.warnings. Each commit carries the
// highest sequence number it holds, so after a crash the outbox rows the
// table already has are dropped, not written twice.
type Sink struct {
	eng    *Engine
	lake   *warehouse.Lake
	schema *schemas.Schema
	// OnCommit, if set, is called after each commit.
	OnCommit func(ctx context.Context, snapshot int64)
	// Fresh, if set, receives marts.warnings' freshness (SinkPath): the
	// snapshot, commit time and newest event time committed; pending is
	// set by the runner when a batch makes transitions.
	Fresh *freshness.Registry
	// Gen is the consumer-group generation the sink's unit is owned in (a
	// partitioned engine, unit.go): a commit records it for the unit, and a
	// sink whose generation is older than the one recorded has lost its unit
	// to another instance (ErrFenced).
	Gen int64
	// Limit, if set, bounds the sequence numbers committed: a unit of a
	// partitioned engine commits only what its last uploaded checkpoint
	// covers, so that the instance that takes it over never makes again a
	// transition the table holds (checkpoint.go).
	Limit func() int64
	// Path is the sink's freshness path (SinkPath when zero).
	Path freshness.Path
}

// ErrFenced: another instance owns the unit now (a newer generation committed).
var ErrFenced = errors.New("预警分区已被其他实例接管 the unit moved to another instance (fenced by a newer generation)")

func (s *Sink) path() freshness.Path {
	if s.Path == (freshness.Path{}) {
		return SinkPath
	}
	return s.Path
}

// NewSink returns the sink of eng's outbox into the lake.
func NewSink(eng *Engine, lake *warehouse.Lake, reg *schemas.Registry) (*Sink, error) {
	s, err := reg.Get("warnings")
	if err != nil {
		return nil, fmt.Errorf("schema warnings: %w", err)
	}
	return &Sink{eng: eng, lake: lake, schema: s}, nil
}

// RaiseSeq moves the engine's sequence above every sequence the table
// records (the single engine's and every unit's), in the engine's own class
// (k mod units): after a switch between one engine and a partitioned one,
// the new numbers do not repeat old ones (the dashboards' live push and
// the table's readers follow seq). No table yet: nothing to do.
func (s *Sink) RaiseSeq(ctx context.Context) error {
	t, err := s.lake.Load(ctx, Table)
	if errors.Is(err, warehouse.ErrNoTable) {
		return nil
	}
	if err != nil {
		return err
	}
	st, err := warehouse.StateOf(t)
	if err != nil {
		return err
	}
	var floor int64
	for k, v := range st.Cursors {
		if k == cursorKey || strings.HasPrefix(k, cursorKey+".") {
			floor = max(floor, v)
		}
	}
	return s.eng.raiseSeq(ctx, floor)
}

// raiseSeq sets the sequence to the first number of the engine's class at or
// above floor, if it is below.
func (e *Engine) raiseSeq(ctx context.Context, floor int64) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.lc.seq >= floor {
		return nil
	}
	stride := max(e.lc.stride, 1)
	seq := e.lc.seq + (floor-e.lc.seq+stride-1)/stride*stride
	if _, err := e.conn.ExecContext(ctx, "INSERT OR REPLACE INTO engine_meta VALUES ('seq', ?)", fmt.Sprint(seq)); err != nil {
		return err
	}
	e.log.Info("预警序号跳过表中已有的序号 warnings sequence moved past the table's", "from", e.lc.seq, "to", seq)
	e.lc.seq = seq
	return nil
}

// Record converts a transition into a marts.warnings record.
func (t *Transition) Record(s *schemas.Schema) schemas.Record {
	r := make(schemas.Record, len(s.Fields))
	set := func(name string, v any) {
		if i := s.Index(name); i >= 0 {
			r[i] = v
		}
	}
	opt := func(v string) any {
		if v == "" {
			return nil
		}
		return v
	}
	fp := func(p *float64) any {
		if p == nil {
			return nil
		}
		return *p
	}
	set("warning_id", t.WarningID)
	set("seq", t.Seq)
	set("kind", t.Kind)
	set("rule", t.Rule)
	set("metric", opt(t.Metric))
	set("subject_type", t.SubjectType)
	set("subject_id", t.SubjectID)
	set("subject_name_zh", opt(t.SubjectNameZh))
	set("subject_name_en", opt(t.SubjectNameEn))
	set("street_code", opt(t.StreetCode))
	set("level", t.Level)
	set("previous_level", opt(t.PreviousLevel))
	set("state", t.State)
	set("predicted", t.Predicted)
	set("horizon_min", int64(t.HorizonMin))
	set("observed_value", fp(t.ObservedValue))
	set("forecast_value", fp(t.ForecastValue))
	set("threshold", fp(t.Threshold))
	set("unit", opt(t.Unit))
	if t.PeopleCount != nil {
		set("people_count", *t.PeopleCount)
	}
	set("baseline_value", fp(t.BaselineValue))
	set("message_zh", t.MessageZh)
	set("message_en", t.MessageEn)
	set("responsible_unit", opt(t.ResponsibleUnit))
	set("event_time", t.EventTime)
	set("transition_at", t.TransitionAt)
	set("raised_at", t.RaisedAt)
	return r
}

// Flush commits every outbox transition not yet in the table and returns
// how many it committed.
func (s *Sink) Flush(ctx context.Context) (int, error) {
	t0 := time.Now()
	pending, err := s.eng.queue(ctx, "outbox", 100000)
	if err != nil || len(pending) == 0 {
		return 0, err
	}
	t0 = s.eng.ph.Since("sink.outbox", t0)
	s.eng.log.Debug("warnings sink flush", "pending", len(pending))
	t, err := s.lake.EnsureTable(ctx, s.schema)
	if err != nil {
		return 0, err
	}
	unit := s.eng.unit
	seqKey, genKey := unit.key(cursorKey), unit.key(genCursorKey)
	if s.Limit != nil {
		limit := s.Limit()
		n := 0
		for n < len(pending) && pending[n].Seq <= limit {
			n++
		}
		if pending = pending[:n]; len(pending) == 0 {
			return 0, nil
		}
	}
	state, err := warehouse.StateOf(t)
	if err != nil {
		return 0, err
	}
	if unit.Partitioned() && state.Cursors[genKey] > s.Gen {
		return 0, fmt.Errorf("%w: %s generation %d, this instance's %d", ErrFenced, unit.Name(), state.Cursors[genKey], s.Gen)
	}
	done := state.Cursors[seqKey]
	var todo []Transition
	for _, tr := range pending {
		if tr.Seq > done {
			todo = append(todo, tr)
		}
	}
	if len(todo) == 0 {
		return 0, s.eng.dequeue(ctx, "outbox", done)
	}
	next := state.Clone()
	next.Batch++
	name := fmt.Sprintf("%010d-%d.parquet", next.Batch, todo[0].Seq)
	dfs, err := s.lake.WriteFiles(t, s.schema, name, len(todo), func(i int) (schemas.Record, string) {
		return todo[i].Record(s.schema), fmt.Sprintf("warnings:%d", todo[i].Seq)
	})
	if err != nil {
		return 0, err
	}
	maxSeq := todo[len(todo)-1].Seq
	next.Cursors[seqKey] = maxSeq
	if unit.Partitioned() {
		next.Cursors[genKey] = s.Gen
	}
	t0 = s.eng.ph.Since("sink.parquet", t0)
	tc := time.Now()
	snap, err := s.lake.Commit(ctx, Table, dfs, next)
	// Units of a partitioned engine commit to the one table from several
	// instances: a commit that lost the race reloads the table, checks its
	// unit's generation and sequence again, and commits the same files on
	// the new snapshot (the other units' positions come with it).
	for try := 0; unit.Partitioned() && errors.Is(err, warehouse.ErrConflict) && try < 50; try++ {
		if t, err = s.lake.EnsureTable(ctx, s.schema); err != nil {
			break
		}
		var cur warehouse.State
		if cur, err = warehouse.StateOf(t); err != nil {
			break
		}
		if cur.Cursors[genKey] > s.Gen || cur.Cursors[seqKey] >= todo[0].Seq {
			for _, df := range dfs {
				s.lake.RemoveFile(context.WithoutCancel(ctx), df.FilePath())
			}
			if cur.Cursors[genKey] > s.Gen {
				return 0, fmt.Errorf("%w: %s generation %d, this instance's %d", ErrFenced, unit.Name(), cur.Cursors[genKey], s.Gen)
			}
			return 0, fmt.Errorf("%w: %s sequence moved to %d meanwhile", warehouse.ErrConflict, unit.Name(), cur.Cursors[seqKey])
		}
		next = cur.Clone()
		next.Batch++
		next.Cursors[seqKey] = maxSeq
		next.Cursors[genKey] = s.Gen
		time.Sleep(time.Duration(rand.IntN(20*(try+1))) * time.Millisecond)
		snap, err = s.lake.Commit(ctx, Table, dfs, next)
	}
	t0 = s.eng.ph.Since("sink.commit", t0)
	if err != nil {
		s.Fresh.Update(s.path(), func(st *freshness.State) { st.Err = err.Error() })
	} else if s.Fresh != nil {
		var newest time.Time
		for i := range todo {
			if todo[i].EventTime.After(newest) {
				newest = todo[i].EventTime
			}
		}
		now := time.Now()
		s.Fresh.Update(s.path(), func(st *freshness.State) {
			st.Snapshot, st.Committed, st.PendingSince, st.Err = snap, now, time.Time{}, ""
			if newest.After(st.EventTime) {
				st.EventTime = newest
			}
		})
		s.Fresh.Observe("citybrain_lake_commit_seconds", "Lake writer commit durations / 数据湖提交耗时", now.Sub(tc).Seconds(), "table", Table)
		s.Fresh.Observe("citybrain_lake_batch_rows", "Rows per lake commit / 每次提交行数", float64(len(todo)), "table", Table)
	}
	s.eng.log.Debug("warnings sink committed", "rows", len(todo))
	if err != nil {
		if errors.Is(err, warehouse.ErrConflict) && !unit.Partitioned() {
			return 0, fmt.Errorf("another writer committed marts.warnings (run one warning engine per lake): %w", err)
		}
		return 0, err
	}
	// The table is the truth now: tell the query engine first, then drop
	// the committed rows from the outbox (which waits for the batch under way).
	if s.OnCommit != nil {
		s.OnCommit(ctx, snap)
	}
	t0 = s.eng.ph.Since("sink.refresh", t0)
	if err := s.eng.dequeue(ctx, "outbox", maxSeq); err != nil {
		return len(todo), err
	}
	s.eng.ph.Since("sink.dequeue", t0)
	return len(todo), nil
}
