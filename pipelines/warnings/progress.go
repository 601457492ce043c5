package warnings

import (
	"sync"
	"time"
)

// Progress is how far the runner has read its topics. After a start with
// history in the topics (make run backfills a week), the engine replays it
// interval by interval — every interval is a pass of the rules, so a week
// takes minutes — and warnings appear as it goes. Progress says so: the
// runner logs it while it is behind, GET /api/warnings carries it as
// "engine", and `citybrain warnings list` points to it.
type Progress struct {
	mu        sync.Mutex
	behind    int64     // records between the runner's positions and the topics' ends
	eventTime time.Time // the newest event time evaluated
	caughtUp  bool
	started   time.Time // when the runner began reading
}

// ProgressReport is Progress as the API gives it.
type ProgressReport struct {
	// Behind is how many records are still to be evaluated (as last measured).
	Behind int64 `json:"behind"`
	// CaughtUp: the engine has evaluated everything the topics held.
	CaughtUp bool `json:"caught_up"`
	// EventTime is the newest event time evaluated (the replay's position).
	EventTime *time.Time `json:"event_time,omitempty"`
}

// Report returns the progress now.
func (p *Progress) Report() ProgressReport {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := ProgressReport{Behind: p.behind, CaughtUp: p.caughtUp}
	if !p.eventTime.IsZero() {
		t := p.eventTime
		r.EventTime = &t
	}
	return r
}

// start marks the beginning of a read.
func (p *Progress) start(now time.Time, behind int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.started, p.behind, p.caughtUp = now, behind, behind == 0
}

// update records a batch: the records still behind and the newest event
// time evaluated. It returns true when the runner has just caught up.
func (p *Progress) update(behind int64, eventTime time.Time) (caughtUp bool, took time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if eventTime.After(p.eventTime) {
		p.eventTime = eventTime
	}
	p.behind = max(behind, 0)
	if p.behind == 0 && !p.caughtUp {
		p.caughtUp = true
		return true, time.Since(p.started)
	}
	return false, 0
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
