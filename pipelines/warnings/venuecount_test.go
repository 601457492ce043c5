package warnings

import (
	"context"
	"testing"
	"time"

	"citybrain/schemas"
)

func countRec(site string, at time.Time, direction string, people int64) schemas.Record {
	return schemas.Record{site, at, int64(300), direction, people, nil, nil, nil, nil}
}

// feedCounts sends one interval per count: V1's own count (total, plus an
// inbound row the rule ignores) and, in the same micro-batch, V1's cells
// holding cells people (residents and workers included).
func feedCounts(t *testing.T, e *Engine, start time.Time, counts []int64, cells int64) []Transition {
	t.Helper()
	var all []Transition
	for i, n := range counts {
		at := start.Add(time.Duration(i) * 5 * time.Minute)
		ts, err := e.Process(context.Background(), Batch{Records: map[string][]schemas.Record{
			"crowd_counts":  {countRec("V1", at, "total", n), countRec("V1", at, "inbound", 99999), countRec("brooklyn_bridge", at, "total", 99999)},
			"mobile_signal": {signalRec("c1", at, cells/2), signalRec("c2", at, cells), signalRec("c3", at, 10)}}})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, ts...)
	}
	return all
}

// TestVenueCountRule: a venue with its own count (raw.crowd_counts, site_id
// = venue_id, direction total) is warned from that count against its
// capacity (0.7/0.8/0.9/1.0 of 10,000), not from its cells — which here hold
// 15,000 people, residents included — and other sites are ignored.
func TestVenueCountRule(t *testing.T) {
	e := newTestEngine(t, observedOnly(), "")
	if err := e.LoadReference(context.Background(), testReference()); err != nil {
		t.Fatal(err)
	}
	ts := feedCounts(t, e, testT0, []int64{5000, 6900, 7000, 8100, 9000, 6000, 6000, 6000}, 15000)
	got := venueTransitions(ts)
	want := "00:10 raised blue; 00:15 escalated yellow; 00:20 escalated orange; 00:35 cleared orange"
	if got != want {
		t.Fatalf("transitions\n got %s\nwant %s", got, want)
	}
	for _, tr := range ts {
		if tr.SubjectType == "venue" && tr.Rule != "crowd_counts.crowd_venue" {
			t.Errorf("venue transition from rule %s, want crowd_counts.crowd_venue only (the cell-based fallback must skip a counted venue)", tr.Rule)
		}
	}
	if tr := firstVenue(ts); tr == nil || tr.Metric != "capacity_ratio" || *tr.PeopleCount != 7000 || tr.Details["count_source"] != "venue_count" {
		t.Errorf("first venue transition %+v", tr)
	}
}

func firstVenue(ts []Transition) *Transition {
	for i := range ts {
		if ts[i].SubjectType == "venue" {
			return &ts[i]
		}
	}
	return nil
}

// TestVenueCountUnusualInsideCapacity: a crowd five times the usual one for
// that time of week but at 60 % of capacity, building up over 80 min (an
// ordinary match day), raises no warning from the venue's own count; a crowd
// building up past capacity does, by forecast before it is there.
func TestVenueCountUnusualInsideCapacity(t *testing.T) {
	cfg := DefaultConfig()
	e := newTestEngine(t, cfg, "")
	if err := e.LoadReference(context.Background(), testReference()); err != nil {
		t.Fatal(err)
	}
	quiet := make([]int64, 36)
	for i := range quiet {
		quiet[i] = 1200
	}
	week := 7 * 24 * time.Hour
	feedCounts(t, e, testT0, quiet, 2000)
	var match []int64
	for n := int64(1200); n <= 6000; n += 300 {
		match = append(match, n)
	}
	match = append(match, 6000, 6000, 6000, 5000, 4000, 3000, 2000, 1200, 1200, 1200, 1200, 1200)
	if got := venueTransitions(feedCounts(t, e, testT0.Add(week), match, 8000)); got != "" {
		t.Errorf("an unusual crowd inside capacity raised %s, want no warning", got)
	}
	surge := []int64{1200, 2500, 4000, 5500, 7000, 8500, 10000, 11000}
	ts := feedCounts(t, e, testT0.Add(2*week), surge, 12000)
	if tr := firstVenue(ts); tr == nil || tr.State != "raised" || !tr.Predicted || tr.EventTime.After(testT0.Add(2*week+15*time.Minute)) {
		t.Fatalf("surge: %s, want a predicted warning raised by 00:15 (the count passes 0.7 of capacity at 00:20)", venueTransitions(ts))
	}
}

// TestVenueCountOneBatch: a micro-batch holding many intervals of venue
// counts (a backfill read from Kafka) is evaluated one interval at a time,
// with the same transitions as one batch per interval.
func TestVenueCountOneBatch(t *testing.T) {
	e := newTestEngine(t, observedOnly(), "")
	if err := e.LoadReference(context.Background(), testReference()); err != nil {
		t.Fatal(err)
	}
	var recs []schemas.Record
	for i, n := range []int64{5000, 6900, 7000, 8100, 9000, 6000, 6000, 6000} {
		at := testT0.Add(time.Duration(i) * 5 * time.Minute)
		recs = append(recs, countRec("V1", at, "inbound", 1), countRec("V1", at, "total", n), countRec("V1", at, "outbound", 1))
	}
	ts, err := e.Process(context.Background(), Batch{Records: map[string][]schemas.Record{"crowd_counts": recs}})
	if err != nil {
		t.Fatal(err)
	}
	want := "00:10 raised blue; 00:15 escalated yellow; 00:20 escalated orange; 00:35 cleared orange"
	if got := venueTransitions(ts); got != want {
		t.Fatalf("transitions\n got %s\nwant %s", got, want)
	}
}

// TestOtherSitesNotEvaluated: the counts of a site that is not a venue
// (make run's real hourly sample, an interval per record) are not evaluated
// at all — the rules would ignore them — while a venue's are, one pass per
// interval.
func TestOtherSitesNotEvaluated(t *testing.T) {
	e := newTestEngine(t, observedOnly(), "")
	if err := e.LoadReference(context.Background(), testReference()); err != nil {
		t.Fatal(err)
	}
	var other, venue []schemas.Record
	for i := range 100 {
		other = append(other, countRec("brooklyn_bridge", testT0.Add(time.Duration(i)*time.Hour), "total", 5000))
	}
	for i := range 3 {
		venue = append(venue, countRec("V1", testT0.Add(time.Duration(i)*5*time.Minute), "total", 5000))
	}
	passes := func() int { return e.Phases().Count("state.crowd_counts.1") }
	before := passes()
	if _, err := e.Process(context.Background(), Batch{Records: map[string][]schemas.Record{"crowd_counts": other}}); err != nil {
		t.Fatal(err)
	}
	if n := passes() - before; n != 0 {
		t.Errorf("%d passes for the counts of a site that is not a venue, want none", n)
	}
	if _, err := e.Process(context.Background(), Batch{Records: map[string][]schemas.Record{"crowd_counts": append(other, venue...)}}); err != nil {
		t.Fatal(err)
	}
	if n := passes() - before; n != 3 {
		t.Errorf("%d passes for three intervals of a venue, want 3", n)
	}
}
