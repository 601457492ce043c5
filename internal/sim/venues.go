package sim

import (
	"math"
	"strconv"
	"time"
)

// VenueCountCols is the layout of the venue-count feed (file drops): the
// canonical fields of raw.crowd_counts, one row per venue, interval and
// direction. site_id is the venue_id.
var VenueCountCols = []string{"site_id", "observed_at", "interval_s", "direction", "people"}

// Variation of a venue's ordinary crowd: from day to day (one factor per
// venue and local day), and within the day (a slow fluctuation drawn per
// venue and hour, interpolated); the fence's own counting error per interval.
const (
	venueDaySigma    = 0.05
	venueWobbleSigma = 0.04
	venueCountSigma  = 0.02
)

// dayIndex numbers local (Beijing) days.
func dayIndex(t time.Time) int64 {
	l := t.In(Shanghai)
	return time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, time.UTC).Unix() / 86400
}

// venueOrdinary is the people in venue vi at t on an ordinary day: its
// capacity × the expected load (venueLoad), times the day's factor and the
// hour-scale fluctuation. Deterministic in the seed and t.
func (s *Sim) venueOrdinary(vi int, t time.Time, rain float64) float64 {
	v := &s.W.Venues[vi]
	day := rng(s.Cfg.Seed, "venue_day", int64(vi), dayIndex(t)).NormFloat64()
	h := t.Unix() / 3600
	f := float64(t.Unix()%3600) / 3600
	w0 := rng(s.Cfg.Seed, "venue_wobble", int64(vi), h).NormFloat64()
	w1 := rng(s.Cfg.Seed, "venue_wobble", int64(vi), h+1).NormFloat64()
	wobble := w0*(1-f) + w1*f
	n := float64(v.Capacity) * s.venueLoad(v, t, rain) * (1 + venueDaySigma*day) * (1 + venueWobbleSigma*wobble)
	return math.Max(0, n)
}

// venuePeople is the people in every venue during the interval starting at
// t: the ordinary crowd plus the injected crowd surges and busy events
// (act: incidents active then). The venue's cells hold these people too.
func (s *Sim) venuePeople(t time.Time, rain float64, act []*Incident) []float64 {
	out := make([]float64, len(s.W.Venues))
	for vi := range s.W.Venues {
		out[vi] = s.venueOrdinary(vi, t, rain)
	}
	for _, in := range act {
		if (in.Kind == KindCrowdSurge || in.Kind == KindCrowdEvent) && in.venue >= 0 {
			out[in.venue] += in.extra * in.intensity(t)
		}
	}
	return out
}

// VenueCountRows are the venue counts for the interval starting at t (a
// multiple of rates.mobile_interval), as a mobile-signalling electronic
// fence (电子围栏) or gate counters at each venue report them: people in
// the venue (direction total), and people who entered (inbound) and left
// (outbound) during the interval.
func (s *Sim) VenueCountRows(t time.Time) [][]string {
	d := s.Cfg.Rates.MobileInterval
	k := slot(t, d)
	prevT := t.Add(-d)
	now := s.venuePeople(t, s.rain(t), s.active(t, d))
	prev := s.venuePeople(prevT, s.rain(prevT), s.active(prevT, d))
	r, pr := rng(s.Cfg.Seed, "venue_counts", k), rng(s.Cfg.Seed, "venue_counts", k-1)
	secs := strconv.Itoa(int(d / time.Second))
	at := ts(t)
	rows := make([][]string, 0, 3*len(s.W.Venues))
	for vi, v := range s.W.Venues {
		n := math.Round(math.Max(0, now[vi]*(1+venueCountSigma*r.NormFloat64())))
		p := math.Round(math.Max(0, prev[vi]*(1+venueCountSigma*pr.NormFloat64())))
		// people stay about an hour and a half: a twelfth … of them turn over per 5 min
		churn := math.Round(math.Min(n, p) * float64(d) / float64(90*time.Minute))
		in, out := churn, churn
		if n > p {
			in += n - p
		} else {
			out += p - n
		}
		f := func(x float64) string { return strconv.FormatFloat(x, 'f', 0, 64) }
		rows = append(rows, []string{v.ID, at, secs, "total", f(n)}, []string{v.ID, at, secs, "inbound", f(in)}, []string{v.ID, at, secs, "outbound", f(out)})
	}
	return rows
}

// VenueByID finds a venue by its id.
func (w *World) VenueByID(id string) (Venue, bool) {
	for _, v := range w.Venues {
		if v.ID == id {
			return v, true
		}
	}
	return Venue{}, false
}
