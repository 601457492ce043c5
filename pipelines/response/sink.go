package response

import (
	"context"
	"fmt"

	"citybrain/schemas"
	"citybrain/warehouse"
)

// Table is the Iceberg table of response timelines.
const Table = "marts.responses"

// cursorKey names the timeline sequence in the table's snapshot summary.
const cursorKey = "responses.seq"

// Sink moves the engine's outbox into marts.responses. Each commit records
// the highest sequence it holds, so after a crash the events the table has
// are dropped from the outbox, not written twice.
type Sink struct {
	eng    *Engine
	lake   *warehouse.Lake
	schema *schemas.Schema
	// OnCommit, if set, is called after each commit.
	OnCommit func(ctx context.Context, snapshot int64)
}

// NewSink returns the sink of eng's outbox into the lake.
func NewSink(eng *Engine, lake *warehouse.Lake, reg *schemas.Registry) (*Sink, error) {
	s, err := reg.Get("responses")
	if err != nil {
		return nil, fmt.Errorf("schema responses: %w", err)
	}
	return &Sink{eng: eng, lake: lake, schema: s}, nil
}

// Align moves the engine's sequence above the table's (a state file lost
// or restored from before the last commit).
func (s *Sink) Align(ctx context.Context) error {
	t, err := s.lake.EnsureTable(ctx, s.schema)
	if err != nil {
		return err
	}
	st, err := warehouse.StateOf(t)
	if err != nil {
		return err
	}
	return s.eng.RaiseSeq(st.Cursors[cursorKey])
}

// Record is the event as a row of marts.responses.
func (ev *Event) Record(s *schemas.Schema) schemas.Record {
	r := make(schemas.Record, len(s.Fields))
	set := func(name string, v any) {
		if i := s.Index(name); i >= 0 {
			r[i] = v
		}
	}
	opt := func(name, v string) {
		if v != "" {
			set(name, v)
		}
	}
	set("seq", ev.Seq)
	set("at", ev.At)
	set("event", ev.Event)
	opt("response_id", ev.ResponseID)
	opt("task_id", ev.TaskID)
	opt("warning_id", ev.WarningID)
	opt("kind", ev.Kind)
	opt("subject_type", ev.SubjectType)
	opt("subject_id", ev.SubjectID)
	opt("subject_name_zh", ev.SubjectNameZh)
	opt("street_code", ev.StreetCode)
	opt("warning_level", ev.WarningLevel)
	opt("plan_id", ev.PlanID)
	opt("plan_level", ev.PlanLevel)
	opt("role_id", ev.RoleID)
	opt("person_id", ev.PersonID)
	opt("person_name", ev.PersonName)
	opt("channel", ev.Channel)
	if ev.Attempt > 0 {
		set("attempt", int64(ev.Attempt))
	}
	opt("detail_zh", ev.DetailZh)
	opt("detail_en", ev.DetailEn)
	if !ev.OpenedAt.IsZero() {
		set("opened_at", ev.OpenedAt)
	}
	return r
}

// Flush commits the outbox events the table does not hold yet and returns
// how many it committed.
func (s *Sink) Flush(ctx context.Context) (int, error) {
	pending := s.eng.Outbox()
	if len(pending) == 0 {
		return 0, nil
	}
	t, err := s.lake.EnsureTable(ctx, s.schema)
	if err != nil {
		return 0, err
	}
	state, err := warehouse.StateOf(t)
	if err != nil {
		return 0, err
	}
	done := state.Cursors[cursorKey]
	var todo []Event
	for _, ev := range pending {
		if ev.Seq > done {
			todo = append(todo, ev)
		}
	}
	if len(todo) == 0 {
		return 0, s.eng.Committed(done)
	}
	next := state.Clone()
	next.Batch++
	name := fmt.Sprintf("%010d-%d.parquet", next.Batch, todo[0].Seq)
	dfs, err := s.lake.WriteFiles(t, s.schema, name, len(todo), func(i int) (schemas.Record, string) {
		return todo[i].Record(s.schema), fmt.Sprintf("responses:%d", todo[i].Seq)
	})
	if err != nil {
		return 0, err
	}
	maxSeq := todo[len(todo)-1].Seq
	next.Cursors[cursorKey] = maxSeq
	snap, err := s.lake.Commit(ctx, Table, dfs, next)
	if err != nil {
		return 0, err
	}
	if s.OnCommit != nil {
		s.OnCommit(ctx, snap)
	}
	return len(todo), s.eng.Committed(maxSeq)
}
