package warnings

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"citybrain/schemas"
)

// bulkReference: V1 (cells c1, c2 at half) has no count of its own (the
// cell-based rule); V2 (cells c3, c4) has one with gaps of over an hour, so
// both venue rules take turns; V3 is counted only. c5..c12 are plain cells.
func bulkReference() Reference {
	ref := Reference{
		Venues: []Venue{
			{ID: "V1", NameZh: "西单商圈", NameEn: "Xidan", Capacity: 10000, AreaM2: 10000, StreetCode: "110102001", Responsible: "xidan-office"},
			{ID: "V2", NameZh: "工人体育场", NameEn: "Workers' Stadium", Capacity: 8000, AreaM2: 9000, StreetCode: "110105001", Responsible: "stadium"},
			{ID: "V3", NameZh: "北京北站", NameEn: "Beijing North", Capacity: 6000, AreaM2: 4000, StreetCode: "110102002", Responsible: "station"},
		},
		VenueCells: []VenueCell{{"V1", "c1", 1}, {"V1", "c2", 0.5}, {"V2", "c3", 1}, {"V2", "c4", 1}},
	}
	for i := 1; i <= 12; i++ {
		ref.GridCells = append(ref.GridCells, GridCell{fmt.Sprintf("c%d", i), fmt.Sprintf("11010%d", i%3), 5000})
	}
	return ref
}

// bulkHistory builds days of 5-min intervals of mobile signal (12 cells) and
// venue counts (V2, V3) with surges past every level and back, a cell that
// drops out for more than three intervals, missing records, a venue count
// that stops for over an hour, and cuts it into micro-batches as a backlog
// and then a live feed would arrive: mostly many intervals per batch, some
// single intervals, intervals split over two batches, duplicate rows within
// a batch (the last wins), corrections of an interval in a later batch, and
// late records of intervals already passed.
func bulkHistory(days int, seed int64) []Batch {
	rng := rand.New(rand.NewSource(seed))
	n := days * 288
	type rec struct {
		input string
		r     schemas.Record
	}
	var slots [][]rec
	surge := func(i, start, length int, peak float64) float64 {
		if i < start || i >= start+length {
			return 0
		}
		x := float64(i-start) / float64(length)
		return peak * math.Sin(math.Pi*x)
	}
	for i := 0; i < n; i++ {
		at := testT0.Add(time.Duration(i) * 5 * time.Minute)
		day := 0.5 + 0.5*math.Sin(2*math.Pi*float64(i%288)/288)
		var rs []rec
		for c := 1; c <= 12; c++ {
			if rng.Float64() < 0.04 || (c == 7 && i%200 >= 150 && i%200 < 156) { // missing records; c7 drops out for 6 intervals
				continue
			}
			p := 800 + 2000*day + 150*rng.NormFloat64()
			switch c {
			case 1, 2: // V1's surges (cell-based rule) and density on c1, c2
				p += surge(i%288, 100, 40, 9000) + surge(i, 400, 30, 14000)
			case 3, 4:
				p += surge(i%288, 180, 30, 5000)
			case 9: // a cell past the density levels, and a surge against its usual count
				p += surge(i%144, 60, 24, 18000)
			case 11:
				if i > 300 {
					p = 3000 + 100*rng.NormFloat64() + surge(i, 500, 20, 20000)
				}
			}
			rs = append(rs, rec{"mobile_signal", schemas.Record{fmt.Sprintf("c%d", c), at, int64(math.Max(0, math.Round(p))), nil, nil}})
		}
		if !(i%288 >= 200 && i%288 < 220) { // V2's count stops for 100 min each day
			v2 := 2000 + 2500*day + 200*rng.NormFloat64() + surge(i%288, 180, 30, 6000)
			rs = append(rs, rec{"crowd_counts", countRec("V2", at, "total", int64(math.Round(v2)))})
			rs = append(rs, rec{"crowd_counts", countRec("V2", at, "inbound", 99999)})
		}
		v3 := 1500 + 1000*day + 100*rng.NormFloat64() + surge(i%288, 50, 20, 5000) + surge(i, 330, 60, 4000)
		rs = append(rs, rec{"crowd_counts", countRec("V3", at, "total", int64(math.Round(v3)))})
		slots = append(slots, rs)
	}
	var batches []Batch
	add := func(b map[string][]schemas.Record, r rec) { b[r.input] = append(b[r.input], r.r) }
	for i := 0; i < n; {
		size := 1 + rng.Intn(60)
		if rng.Float64() < 0.3 {
			size = 1 // live
		}
		b := map[string][]schemas.Record{}
		end := min(n, i+size)
		for j := i; j < end; j++ {
			for _, r := range slots[j] {
				add(b, r)
			}
		}
		// late records and corrections of intervals passed already
		if i > 20 && rng.Float64() < 0.5 {
			j := i - 1 - rng.Intn(15)
			for _, r := range slots[j][:len(slots[j])/2] {
				r.r = append(schemas.Record(nil), r.r...)
				if r.input == "mobile_signal" {
					r.r[2] = r.r[2].(int64) + int64(rng.Intn(400)) - 200
				} else if r.r[3] == "total" {
					r.r[4] = r.r[4].(int64) + int64(rng.Intn(400)) - 200
				}
				add(b, r)
			}
		}
		// a duplicate row within the batch: the last read wins
		if rng.Float64() < 0.3 {
			j := i + rng.Intn(end-i)
			r := slots[j][0]
			r.r = append(schemas.Record(nil), r.r...)
			if r.input == "mobile_signal" {
				r.r[2] = r.r[2].(int64) + 500
			}
			add(b, r)
		}
		i = end
		// an interval split over two batches: part of the next one here
		if i < n && rng.Float64() < 0.3 {
			half := len(slots[i]) / 2
			for _, r := range slots[i][:half] {
				add(b, r)
			}
			batches = append(batches, Batch{Records: b})
			b = map[string][]schemas.Record{}
			for _, r := range slots[i][half:] {
				add(b, r)
			}
			i++
		}
		batches = append(batches, Batch{Records: b})
	}
	return batches
}

func transitionKey(t Transition) string {
	f := func(p *float64) string {
		if p == nil {
			return "-"
		}
		return fmt.Sprintf("%.6g", *p)
	}
	pc := "-"
	if t.PeopleCount != nil {
		pc = fmt.Sprint(*t.PeopleCount)
	}
	return fmt.Sprintf("%s %s %s/%s %s %s→%s %s predicted=%v/%d observed=%s forecast=%s threshold=%s people=%s raised=%s",
		t.EventTime.Format("01-02T15:04"), t.Rule, t.SubjectType, t.SubjectID, t.State, t.PreviousLevel, t.Level, t.Kind,
		t.Predicted, t.HorizonMin, f(t.ObservedValue), f(t.ForecastValue), f(t.Threshold), pc, t.RaisedAt.Format("01-02T15:04"))
}

// stateTables are the stored state compared between the two paths.
var stateTables = []struct{ name, order string }{
	{"cell_state", "grid_cell_id"}, {"cell_baseline", "grid_cell_id, slot"},
	{"venue_state", "venue_id"}, {"venue_baseline", "venue_id, slot"},
	{"venue_count_state", "venue_id"}, {"venue_count_baseline", "venue_id, slot"},
}

// sameState compares two engines' state tables, floats to 1e-9 (relative):
// a running mean updated interval by interval and the cumulative average of
// the bulk path differ in the last bits.
func sameState(t *testing.T, seq, bulk *Engine) {
	t.Helper()
	ctx := context.Background()
	for _, tb := range stateTables {
		q := fmt.Sprintf("SELECT * FROM %s ORDER BY %s", tb.name, tb.order)
		a, err := seq.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		b, err := bulk.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(a) != len(b) {
			t.Errorf("%s: %d rows interval by interval, %d in bulk", tb.name, len(a), len(b))
			continue
		}
		bad := 0
		for i := range a {
			for j := range a[i] {
				if !sameValue(a[i][j], b[i][j]) && bad < 5 {
					t.Errorf("%s row %d: interval by interval %v, in bulk %v", tb.name, i, a[i], b[i])
					bad++
					break
				}
			}
		}
	}
	// The open warnings: same subjects, levels, raised and low-since times.
	q := "SELECT rule, subject_type, subject_id, state_json FROM active_warnings ORDER BY ALL"
	a, _ := seq.Query(ctx, q)
	b, _ := bulk.Query(ctx, q)
	open := func(rows [][]any) string {
		var out []string
		for _, r := range rows {
			var ac Active
			json.Unmarshal([]byte(r[3].(string)), &ac)
			out = append(out, fmt.Sprintf("%v/%v/%v level=%d raised=%v low_since=%v", r[0], r[1], r[2], ac.Level, ac.RaisedAt, ac.LowSince))
		}
		return strings.Join(out, "\n")
	}
	if oa, ob := open(a), open(b); oa != ob {
		t.Errorf("open warnings differ\ninterval by interval:\n%s\nin bulk:\n%s", oa, ob)
	}
}

func sameValue(a, b any) bool {
	fa, oka := a.(float64)
	fb, okb := b.(float64)
	if oka && okb {
		return math.Abs(fa-fb) <= 1e-9*math.Max(1, math.Max(math.Abs(fa), math.Abs(fb)))
	}
	return fmt.Sprint(a) == fmt.Sprint(b)
}

// TestBulkEquivalence: the bulk path (a batch of many intervals evaluated at
// once) and the sequential one (one pass per interval) make the same
// transitions — kind, rule, subject, levels, state, event time, predicted,
// values — and leave the same state tables and open warnings, over two days of
// history with surges, gaps, late records, corrections, duplicates and
// intervals split over batches, at 15-min and 60-min time-of-week slots.
// WARNINGS_RULES=<dir> checks a copy of the rules (its bulk/ against its rules).
func TestBulkEquivalence(t *testing.T) {
	t.Parallel() // with the package's other long replays: one core each (make test's time)
	days := 2
	if testing.Short() {
		days = 1
	}
	for _, tc := range []struct {
		name string
		cfg  func() Config
		seed int64
	}{
		{"slot=15min", DefaultConfig, 1},
		{"slot=60min,min_n=2", func() Config {
			c := DefaultConfig()
			c.Crowd.SlotMinutes, c.Crowd.BaselineMinSamples = 60, 2
			return c
		}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			batches := bulkHistory(days, tc.seed)
			run := func(bulkMin int) (*Engine, []string) {
				cfg := tc.cfg()
				cfg.BulkMinIntervals = bulkMin
				cfg.RulesDir = os.Getenv("WARNINGS_RULES") // a copy of the rules to check
				e := newTestEngine(t, cfg, "")
				if err := e.LoadReference(ctx, bulkReference()); err != nil {
					t.Fatal(err)
				}
				var keys []string
				for _, b := range batches {
					ts, err := e.Process(ctx, b)
					if err != nil {
						t.Fatal(err)
					}
					for _, tr := range ts {
						keys = append(keys, transitionKey(tr))
					}
				}
				sort.Strings(keys)
				return e, keys
			}
			seqE, seqT := run(0)
			bulkE, bulkT := run(2)
			if n := bulkE.Phases().Count("bulk.rules"); n == 0 {
				t.Fatal("no batch was evaluated in bulk")
			}
			kinds := map[string]int{}
			for _, k := range seqT {
				kinds[strings.Fields(k)[1]+" "+strings.Fields(k)[3]]++
			}
			t.Logf("%d batches, %d transitions interval by interval (%v), %d in bulk; bulk passes %d, crowd_counts stretches %d",
				len(batches), len(seqT), kinds, len(bulkT), bulkE.Phases().Count("bulk.stage"), bulkE.Phases().Count("bulk.state.crowd_counts.1"))
			if len(seqT) < 20 {
				t.Errorf("only %d transitions: the history should exercise the lifecycle", len(seqT))
			}
			if a, b := strings.Join(seqT, "\n"), strings.Join(bulkT, "\n"); a != b {
				t.Errorf("transitions differ:\n%s", diffLines(seqT, bulkT))
			}
			sameState(t, seqE, bulkE)
		})
	}
}

// diffLines lists the lines only one side has.
func diffLines(a, b []string) string {
	count := map[string]int{}
	for _, x := range a {
		count[x]++
	}
	for _, x := range b {
		count[x]--
	}
	var out []string
	for x, n := range count {
		switch {
		case n > 0:
			out = append(out, "- interval by interval only: "+x)
		case n < 0:
			out = append(out, "+ bulk only: "+x)
		}
	}
	sort.Strings(out)
	if len(out) > 40 {
		out = append(out[:40], fmt.Sprintf("… %d more", len(out)-40))
	}
	return strings.Join(out, "\n")
}
