package warnings

import (
	"sync"
	"time"

	"citybrain/internal/freshness"
)

// EnginePath and SinkPath are the engine's freshness paths: what the engine
// has evaluated (GET /api/warnings, SSE), and what marts.warnings holds.
var (
	EnginePath = freshness.LivePath
	SinkPath   = freshness.Path{Component: "warnings", Name: "sink", Table: Table}
)

// caughtUpSlack: the engine counts as caught up while it has reached its
// topics' ends (as read at most endsEvery before) within this long — the
// goal for a warning's freshness. A live engine always has the records of
// the last fetch in hand, so "nothing behind" alone would flicker.
const caughtUpSlack = 10 * time.Second

// Progress is how far the runner has read its topics, measured, not
// assumed: the topics' ends are read again every few seconds whether or
// not the engine believes it is caught up (it once said "caught up" while
// days behind, because the ends were only refreshed while replaying). The
// runner logs it, GET /api/warnings carries it as "engine", and `citybrain
// warnings list` points to it.
type Progress struct {
	// Path is the freshness path written (EnginePath when zero; a unit's own path in a partitioned engine).
	Path           freshness.Path
	mu             sync.Mutex
	behind         int64     // records between the runner's positions and the topics' ends
	eventTime      time.Time // the newest event time evaluated
	inputEventTime time.Time // the newest event time in the topics (last record of each partition)
	pendingSince   time.Time // append time of the oldest record not yet evaluated (zero: none)
	lastZero       time.Time // when the runner last had nothing behind the ends it had read
	caughtUp       bool      // as last logged
	started        time.Time // when the runner began reading
	now            func() time.Time
}

// ProgressReport is Progress as the API gives it.
type ProgressReport struct {
	// Behind is how many records are still to be evaluated (topic ends read at most a few seconds ago).
	Behind int64 `json:"behind"`
	// CaughtUp: the engine reached its topics' ends (read every 2 s) within the last 10 s.
	CaughtUp bool `json:"caught_up"`
	// LagS is how many wall seconds the oldest record not yet evaluated has waited (0: none).
	LagS float64 `json:"lag_s"`
	// EventTime is the newest event time evaluated (the replay's position).
	EventTime *time.Time `json:"event_time,omitempty"`
	// InputEventTime is the newest event time in the engine's topics.
	InputEventTime *time.Time `json:"input_event_time,omitempty"`
}

func (p *Progress) clock() time.Time {
	if p.now != nil {
		return p.now()
	}
	return time.Now()
}

// Report returns the progress now.
func (p *Progress) Report() ProgressReport {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reportLocked()
}

func (p *Progress) reportLocked() ProgressReport {
	r := ProgressReport{Behind: p.behind}
	if !p.pendingSince.IsZero() {
		r.LagS = max(p.clock().Sub(p.pendingSince).Seconds(), 0)
	}
	r.CaughtUp = !p.lastZero.IsZero() && p.clock().Sub(p.lastZero) < caughtUpSlack
	if !p.eventTime.IsZero() {
		t := p.eventTime
		r.EventTime = &t
	}
	if !p.inputEventTime.IsZero() {
		t := p.inputEventTime
		r.InputEventTime = &t
	}
	return r
}

// start marks the beginning of a read.
func (p *Progress) start(now time.Time, behind int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.started, p.behind, p.caughtUp = now, behind, behind == 0
	p.lastZero = time.Time{} // a read before this one (other topics) says nothing now
	if behind == 0 {
		p.lastZero = now
	}
	if behind > 0 && p.pendingSince.IsZero() {
		p.pendingSince = now // until the first fetch tells the first record's append time
	}
}

// pending notes a record that arrived at at and is not evaluated yet.
func (p *Progress) pending(at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pendingSince.IsZero() || at.Before(p.pendingSince) {
		p.pendingSince = at
	}
}

// inputs records the newest event time in the topics.
func (p *Progress) inputs(t time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if t.After(p.inputEventTime) {
		p.inputEventTime = t
	}
}

// update records the records still behind and the newest event time
// evaluated; lastDone is the append time of the last record evaluated
// (zero when no batch was evaluated) and idle says no fetched record waits.
// It returns changed = true with the new state when the engine has just
// caught up or fallen behind (for the log).
func (p *Progress) update(behind int64, eventTime, lastDone time.Time, idle bool) (changed, caughtUp bool, took time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if eventTime.After(p.eventTime) {
		p.eventTime = eventTime
	}
	if p.eventTime.After(p.inputEventTime) {
		p.inputEventTime = p.eventTime
	}
	p.behind = max(behind, 0)
	if p.behind == 0 {
		p.lastZero = p.clock()
	}
	switch {
	case p.behind == 0 && idle:
		p.pendingSince = time.Time{}
	case !lastDone.IsZero() && lastDone.After(p.pendingSince):
		// What waits arrived after the last record evaluated (an upper bound of its wait).
		p.pendingSince = lastDone
	case p.behind > 0 && p.pendingSince.IsZero():
		p.pendingSince = p.clock()
	}
	rep := p.reportLocked()
	if rep.CaughtUp != p.caughtUp {
		p.caughtUp = rep.CaughtUp
		return true, rep.CaughtUp, p.clock().Sub(p.started)
	}
	return false, p.caughtUp, 0
}

// fresh writes the progress as the engine's freshness path.
func (p *Progress) fresh(reg *freshness.Registry) {
	if reg == nil {
		return
	}
	path := p.Path
	if path == (freshness.Path{}) {
		path = EnginePath
	}
	p.mu.Lock()
	st := freshness.State{Path: path, EventTime: p.eventTime, InputEventTime: p.inputEventTime, Behind: p.behind, PendingSince: p.pendingSince}
	p.mu.Unlock()
	reg.Update(path, func(s *freshness.State) {
		err := s.Err
		*s = st
		s.Err = err
	})
}

// newestEventTime is the latest event time among a batch's records (the
// schema's event_time field).
func newestEventTime(b Batch, schemaOf map[string]int) time.Time {
	var newest time.Time
	for in, recs := range b.Records {
		i, ok := schemaOf[in]
		if !ok || i < 0 {
			continue
		}
		for _, r := range recs {
			if t, ok := r[i].(time.Time); ok && t.After(newest) {
				newest = t
			}
		}
	}
	return newest
}
