package sim

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"time"
)

// Incident kinds in the ground truth.
const (
	KindCrowdSurge  = "crowd_surge"
	KindPipeBurst   = "pipe_burst"
	KindRainstorm   = "rainstorm"
	KindFireCluster = "fire_cluster"
	// KindCrowdEvent is a busy but ordinary event (a match, a fair) that
	// stays inside the venue's capacity: the warnings must not fire on it.
	KindCrowdEvent = "crowd_event"
)

// Incident is one injected incident: what, where, start, peak, end. It is a
// line of ground_truth.jsonl.
type Incident struct {
	ID          string    `json:"id"`
	Kind        string    `json:"kind"`
	VenueID     string    `json:"venue_id,omitempty"`
	GridCellIDs []string  `json:"grid_cell_ids,omitempty"`
	SensorID    string    `json:"sensor_id,omitempty"`
	StreetCode  string    `json:"street_code,omitempty"`
	Start       time.Time `json:"start"`
	Peak        time.Time `json:"peak"`
	End         time.Time `json:"end"`
	PeakPeople  int       `json:"peak_people,omitempty"`
	VenuePeople int       `json:"venue_people,omitempty"`
	PeakRainMM  float64   `json:"peak_rain_mm,omitempty"`
	Calls       int       `json:"calls,omitempty"`
	Longitude   float64   `json:"longitude,omitempty"`
	Latitude    float64   `json:"latitude,omitempty"`
	NoteZH      string    `json:"note_zh"`
	NoteEN      string    `json:"note_en"`

	venue int     // index in World.Venues, -1 if none
	extra float64 // extra people at the peak (crowd surges)
}

// intensity is 0 outside [Start, End], rising linearly to 1 at Peak.
func (in *Incident) intensity(t time.Time) float64 {
	switch {
	case t.Before(in.Start) || !t.Before(in.End):
		return 0
	case t.Before(in.Peak):
		return float64(t.Sub(in.Start)) / float64(in.Peak.Sub(in.Start))
	default:
		return float64(in.End.Sub(t)) / float64(in.End.Sub(in.Peak))
	}
}

const week = 7 * 24 * time.Hour

// incidentsOfBlock schedules the incidents of the 7-day block b after the
// epoch: a holiday-style crush at Beijing North Station, a pipe burst, an
// event at the stadium, a rainstorm, a cluster of fire calls and an evening
// crush at a scenic area — each at a seeded hour of its day.
func (s *Sim) incidentsOfBlock(b int64) []*Incident {
	s.mu.Lock()
	defer s.mu.Unlock()
	if in, ok := s.blocks[b]; ok {
		return in
	}
	w := s.W
	r := rng(w.Cfg.Seed, "incidents", b)
	base := s.Epoch.Add(time.Duration(b) * week)
	at := func(dayN int, hour, minute int) time.Time {
		d := base.AddDate(0, 0, dayN)
		return time.Date(d.Year(), d.Month(), d.Day(), hour, minute, 0, 0, Shanghai)
	}
	var out []*Incident
	id := func(kind string) string { return fmt.Sprintf("GT-%03d-%d-%s", b, len(out)+1, kind) }
	surge := func(vi int, start time.Time, rise, fall time.Duration, factor float64, zh, en string) {
		v := w.Venues[vi]
		in := &Incident{ID: id(KindCrowdSurge), Kind: KindCrowdSurge, VenueID: v.ID, StreetCode: v.Street, venue: vi,
			Start: start, Peak: start.Add(rise), End: start.Add(rise + fall), Longitude: v.Lon, Latitude: v.Lat,
			NoteZH: zh, NoteEN: en}
		for _, ci := range v.Cells {
			in.GridCellIDs = append(in.GridCellIDs, w.Cells[ci].ID)
		}
		// people at the peak: the usual crowd for that time plus a surge of
		// factor × capacity (PeakPeople in the venue's cells, VenuePeople in
		// the venue itself, as its venue-count feed shows them)
		baseline := s.venueBaseline(vi, in.Peak)
		in.extra = float64(v.Capacity) * factor
		in.PeakPeople = int(math.Round(baseline + in.extra))
		in.VenuePeople = int(math.Round(float64(v.Capacity)*s.venueLoad(&v, in.Peak, s.rawRain(in.Peak)) + in.extra))
		out = append(out, in)
	}
	// a busy event inside capacity: the venue holds `share` of its capacity at the peak
	event := func(vi int, start time.Time, rise, fall time.Duration, share float64, zh, en string) {
		v := w.Venues[vi]
		in := &Incident{ID: id(KindCrowdEvent), Kind: KindCrowdEvent, VenueID: v.ID, StreetCode: v.Street, venue: vi,
			Start: start, Peak: start.Add(rise), End: start.Add(rise + fall), Longitude: v.Lon, Latitude: v.Lat,
			NoteZH: zh, NoteEN: en}
		for _, ci := range v.Cells {
			in.GridCellIDs = append(in.GridCellIDs, w.Cells[ci].ID)
		}
		ordinary := float64(v.Capacity) * s.venueLoad(&v, in.Peak, s.rawRain(in.Peak))
		in.extra = math.Max(0, float64(v.Capacity)*share-ordinary)
		in.PeakPeople = int(math.Round(s.venueBaseline(vi, in.Peak) + in.extra))
		in.VenuePeople = int(math.Round(ordinary + in.extra))
		out = append(out, in)
	}
	venue := func(kind string, pref string) int {
		for i, v := range w.Venues {
			if v.NameZH == pref {
				return i
			}
		}
		var c []int
		for i, v := range w.Venues {
			if v.Kind == kind {
				c = append(c, i)
			}
		}
		return c[r.IntN(len(c))]
	}
	// day 1: crush at the railway station
	vi := venue("railway_station", "北京北站")
	surge(vi, at(1, 15+r.IntN(2), 5*r.IntN(12)), 2*time.Hour, 150*time.Minute, 0.9+0.4*r.Float64(),
		"节假日返程客流激增，"+w.Venues[vi].NameZH+"候车区严重拥挤", "Holiday crush at "+w.Venues[vi].NameEN)
	// day 2: pipe burst at a pressure sensor
	var pressure []int
	for i, se := range w.Sensors {
		if se.Kind == "pressure" {
			pressure = append(pressure, i)
		}
	}
	if len(pressure) > 0 {
		se := w.Sensors[pressure[r.IntN(len(pressure))]]
		start := at(2, 2+r.IntN(4), 5*r.IntN(12))
		out = append(out, &Incident{ID: id(KindPipeBurst), Kind: KindPipeBurst, SensorID: se.ID, StreetCode: se.Street, venue: -1,
			Start: start, Peak: start.Add(30 * time.Minute), End: start.Add(5 * time.Hour), Longitude: se.Lon, Latitude: se.Lat,
			NoteZH: "供水主管道爆裂，压力骤降", NoteEN: "Water main burst: pressure drop"})
	}
	// day 3: event at the stadium
	vi = venue("stadium", "先农坛体育场")
	surge(vi, at(3, 18, 0), 90*time.Minute, 2*time.Hour, 1.0+0.2*r.Float64(),
		w.Venues[vi].NameZH+"大型赛事散场人流", "Match at "+w.Venues[vi].NameEN)
	// day 4: rainstorm over the district
	start := at(4, 13+r.IntN(4), 0)
	peakRain := 35 + 20*r.Float64()
	out = append(out, &Incident{ID: id(KindRainstorm), Kind: KindRainstorm, venue: -1, Start: start, Peak: start.Add(2 * time.Hour),
		End: start.Add(5 * time.Hour), PeakRainMM: math.Round(peakRain*10) / 10,
		NoteZH: "短时强降雨（暴雨红色预警级），低洼处积水", NoteEN: "Intense rainstorm; waterlogging at low points"})
	// day 5: a cluster of fire calls in one street
	st := w.Streets[r.IntN(len(w.Streets))]
	ci := w.cellsOf[st.Code][r.IntN(len(w.cellsOf[st.Code]))]
	start = at(5, 10+r.IntN(10), 5*r.IntN(12))
	out = append(out, &Incident{ID: id(KindFireCluster), Kind: KindFireCluster, StreetCode: st.Code, venue: -1,
		GridCellIDs: []string{w.Cells[ci].ID}, Start: start, Peak: start.Add(40 * time.Minute), End: start.Add(2 * time.Hour),
		Calls: 5 + r.IntN(4), Longitude: w.Cells[ci].Lon, Latitude: w.Cells[ci].Lat,
		NoteZH: st.NameZH + "短时间内多起火警（连片火情）", NoteEN: "Cluster of fire calls in " + st.NameEN})
	// day 6: evening crush at a scenic area
	vi = venue("scenic_area", "什刹海景区")
	surge(vi, at(6, 18+r.IntN(2), 0), 100*time.Minute, 2*time.Hour, 0.9+0.3*r.Float64(),
		w.Venues[vi].NameZH+"夜间游客聚集", "Evening crowd at "+w.Venues[vi].NameEN)
	// More surges (drawn after the ones above, so those keep their times):
	// day 2 evening, a night market overfills Dashilar; day 5 (a Saturday
	// from a Monday epoch), a promotion at Xidan; day 6 morning, the zoo.
	vi = venue("commercial_district", "大栅栏商业街")
	surge(vi, at(2, 18+r.IntN(2), 5*r.IntN(12)), 80*time.Minute, 100*time.Minute, 0.9+0.3*r.Float64(),
		w.Venues[vi].NameZH+"夜市客流超限", "Night-market crush at "+w.Venues[vi].NameEN)
	vi = venue("commercial_district", "西单商业区")
	surge(vi, at(5, 14+r.IntN(4), 5*r.IntN(12)), 100*time.Minute, 2*time.Hour, 0.8+0.3*r.Float64(),
		w.Venues[vi].NameZH+"促销活动客流激增", "Promotion crowd at "+w.Venues[vi].NameEN)
	vi = venue("scenic_area", "北京动物园")
	surge(vi, at(6, 9+r.IntN(2), 5*r.IntN(12)), 110*time.Minute, 150*time.Minute, 0.8+0.3*r.Float64(),
		w.Venues[vi].NameZH+"入园游客激增", "Visitor surge at "+w.Venues[vi].NameEN)
	// Busy days that stay inside capacity (no warning is due): an ordinary
	// match at the stadium, a trade fair at the Exhibition Center, a fine
	// Saturday at Taoranting Park.
	vi = venue("stadium", "先农坛体育场")
	event(vi, at(5, 17+r.IntN(3), 30*r.IntN(2)), 90*time.Minute, 150*time.Minute, 0.45+0.15*r.Float64(),
		w.Venues[vi].NameZH+"常规赛事（未超承载量）", "Ordinary match at "+w.Venues[vi].NameEN+" (inside capacity)")
	vi = venue("other", "北京展览馆")
	event(vi, at(2+r.IntN(2), 9, 0), 2*time.Hour, 4*time.Hour, 0.5+0.1*r.Float64(),
		w.Venues[vi].NameZH+"展会（未超承载量）", "Trade fair at "+w.Venues[vi].NameEN+" (inside capacity)")
	vi = venue("park", "陶然亭公园")
	event(vi, at(5, 9+r.IntN(2), 0), 3*time.Hour, 3*time.Hour, 0.5+0.1*r.Float64(),
		w.Venues[vi].NameZH+"周末游园（未超承载量）", "Busy Saturday at "+w.Venues[vi].NameEN+" (inside capacity)")
	s.blocks[b] = out
	return out
}

// Incidents lists the injected incidents that start in [from, to), by start.
func (s *Sim) Incidents(from, to time.Time) []*Incident {
	var out []*Incident
	if !to.After(from) {
		return nil
	}
	b0 := int64(math.Floor(float64(from.Sub(s.Epoch)) / float64(week)))
	b1 := int64(math.Floor(float64(to.Sub(s.Epoch)) / float64(week)))
	for b := max(b0, 0); b <= b1; b++ {
		for _, in := range s.incidentsOfBlock(b) {
			if !in.Start.Before(from) && in.Start.Before(to) {
				out = append(out, in)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// active lists incidents whose [Start, End) overlaps [t, t+d).
func (s *Sim) active(t time.Time, d time.Duration) []*Incident {
	var out []*Incident
	for _, in := range s.Incidents(t.Add(-24*time.Hour), t.Add(d)) {
		if in.End.After(t) && in.Start.Before(t.Add(d)) {
			out = append(out, in)
		}
	}
	return out
}

// WriteGroundTruth writes the incidents as JSON Lines (atomically).
func WriteGroundTruth(path string, in []*Incident) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for _, x := range in {
		if err := enc.Encode(x); err != nil {
			f.Close()
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ReadGroundTruth reads a ground_truth.jsonl file.
func ReadGroundTruth(path string) ([]Incident, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read ground truth: %w", err)
	}
	defer f.Close()
	var out []Incident
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for line := 1; sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var in Incident
		if err := json.Unmarshal(sc.Bytes(), &in); err != nil {
			return nil, fmt.Errorf("%s:%d: 无法解析 cannot parse: %w", path, line, err)
		}
		in.venue = -1
		out = append(out, in)
	}
	return out, sc.Err()
}
