package sim

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"

	"citybrain/internal/geo"
	"citybrain/schemas"
)

var testUntil = time.Date(2026, 10, 9, 0, 0, 0, 0, Shanghai)

func testConfig() Config {
	c := DefaultConfig()
	c.WeatherFile = "../../testdata/real/weather/PRSA_Data_Guanyuan_20130301-20170228.csv"
	return c
}

func readCSV(t *testing.T, path string) (map[string]int, [][]string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	return col, rows[1:]
}

func TestWorldCountsAndInvariants(t *testing.T) {
	cfg := testConfig()
	w, err := NewWorld(cfg, testUntil.AddDate(0, 0, -7))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := schemas.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	// every table's columns are fields of its canonical schema, required ones present and filled
	for name, tb := range w.Tables {
		sc, err := reg.Get(name)
		if err != nil {
			t.Errorf("table %s has no schema: %v", name, err)
			continue
		}
		for _, c := range tb.Cols {
			if sc.Index(c) < 0 {
				t.Errorf("%s.%s is not a field of schema %s", name, c, name)
			}
		}
		for _, f := range sc.Fields {
			i := slices.Index(tb.Cols, f.Name)
			if f.Required && i < 0 {
				t.Errorf("%s: required field %s not written", name, f.Name)
				continue
			}
			for _, row := range tb.Rows {
				if i >= 0 && f.Required && row[i] == "" {
					t.Fatalf("%s: required %s empty in %v", name, f.Name, row)
				}
				if i >= 0 && len(f.Enum) > 0 && row[i] != "" && !slices.Contains(f.Enum, row[i]) {
					t.Fatalf("%s.%s = %q not in %v", name, f.Name, row[i], f.Enum)
				}
			}
		}
	}
	count := func(name string) int { return len(w.Tables[name].Rows) }
	want := map[string]int{"streets": 15, "enterprises": 24000, "risk_sources": 20759, "inspectors": 829, "supply_warehouses": 3,
		"communities": 263, "venues": len(venueSpecs)}
	for name, n := range want {
		if got := count(name); got != n && !(name == "communities" && math.Abs(float64(got-n)) <= 8) {
			t.Errorf("%s: %d rows, want %d", name, got, n)
		}
	}
	kinds := map[string]int{}
	fs := w.Tables["fire_stations"]
	for _, r := range fs.Rows {
		kinds[r[slices.Index(fs.Cols, "kind")]]++
	}
	if kinds["small"] != 26 || kinds["micro"] != 1011 {
		t.Errorf("fire stations %v, want 26 small and 1011 micro", kinds)
	}
	// grid: 250 m cells over ~50 km²
	if n := len(w.Cells); n < 700 || n > 900 {
		t.Errorf("%d grid cells, want about 50.3 km² / 0.0625 km² ≈ 805", n)
	}
	// every unit inside its street (independently located with internal/geo)
	st, err := geo.LoadStreets()
	if err != nil {
		t.Fatal(err)
	}
	ent := w.Tables["enterprises"]
	ci := func(c string) int { return slices.Index(ent.Cols, c) }
	insured := 0
	for _, r := range ent.Rows {
		lon, _ := strconv.ParseFloat(r[ci("longitude")], 64)
		lat, _ := strconv.ParseFloat(r[ci("latitude")], 64)
		s, ok := st.Locate(lon, lat)
		if !ok || s.Adcode != r[ci("street_code")] {
			t.Fatalf("enterprise %s at %v,%v is in %q, recorded street %s", r[0], lon, lat, s.Adcode, r[ci("street_code")])
		}
		if r[ci("has_liability_insurance")] == "true" {
			insured++
		}
		if r[ci("grid_inspector_id")] == "" || r[ci("community_code")] == "" {
			t.Fatalf("enterprise %s lacks inspector or community", r[0])
		}
	}
	if share := float64(insured) / float64(len(ent.Rows)); math.Abs(share-0.45) > 0.02 {
		t.Errorf("insured share %.3f, want ≈ 0.45", share)
	}
	// risk sources: LEC in the legal sets, held by exactly 6150 enterprises
	rs := w.Tables["risk_sources"]
	holders := map[string]bool{}
	levels := map[string]int{}
	for _, r := range rs.Rows {
		l, _ := strconv.ParseFloat(r[slices.Index(rs.Cols, "lec_l")], 64)
		e, _ := strconv.ParseFloat(r[slices.Index(rs.Cols, "lec_e")], 64)
		c, _ := strconv.ParseFloat(r[slices.Index(rs.Cols, "lec_c")], 64)
		if !slices.Contains(LegalL, l) || !slices.Contains(LegalE, e) || !slices.Contains(LegalC, c) {
			t.Fatalf("risk source %s: L=%v E=%v C=%v outside the legal sets", r[0], l, e, c)
		}
		holders[r[slices.Index(rs.Cols, "enterprise_id")]] = true
		levels[LECLevel(l, e, c)]++
	}
	if len(holders) != 6150 {
		t.Errorf("%d enterprises hold risk sources, want 6150", len(holders))
	}
	for _, lv := range []string{"major", "high", "general", "low"} {
		if levels[lv] == 0 {
			t.Errorf("no risk source at level %s: %v", lv, levels)
		}
	}
	// hazards: status consistent with deadline and rectification
	hz := w.Tables["hazards"]
	hc := func(c string) int { return slices.Index(hz.Cols, c) }
	statuses := map[string]int{}
	for _, r := range hz.Rows {
		statuses[r[hc("status")]]++
		dl, _ := time.ParseInLocation("2006-01-02", r[hc("deadline")], Shanghai)
		switch r[hc("status")] {
		case "rectified":
			if r[hc("rectified_at")] == "" {
				t.Fatalf("hazard %s rectified without a time", r[0])
			}
		case "overdue":
			if !dl.Before(w.Epoch) || r[hc("rectified_at")] != "" {
				t.Fatalf("hazard %s overdue but deadline %s / rectified %q", r[0], r[hc("deadline")], r[hc("rectified_at")])
			}
		}
	}
	if statuses["open"] == 0 || statuses["overdue"] == 0 || statuses["rectified"] == 0 {
		t.Errorf("hazard statuses %v: want all three", statuses)
	}
	// venue cells exist for every venue; warehouses cover north, centre, south
	vcells := map[string]int{}
	for _, r := range w.Tables["venue_cells"].Rows {
		vcells[r[0]]++
	}
	for _, v := range w.Venues {
		if vcells[v.ID] == 0 {
			t.Errorf("venue %s has no grid cell", v.NameZH)
		}
	}
	zones := map[string]bool{}
	for _, r := range w.Tables["supply_warehouses"].Rows {
		zones[r[3]] = true
	}
	if len(zones) != 3 {
		t.Errorf("warehouse zones %v", zones)
	}
	// charging points: most communities covered, not necessarily all (target 10 has a figure)
	covered := map[string]bool{}
	for _, r := range w.Tables["charging_points"].Rows {
		covered[r[2]] = true
	}
	if n := len(covered); n < count("communities")*8/10 || n > count("communities") {
		t.Errorf("%d of %d communities have charging points", n, count("communities"))
	}
	// plans: 12 HQs and 15 streets own plans
	owners := map[string]map[string]bool{}
	for _, r := range w.Tables["emergency_plans"].Rows {
		k := r[5]
		if owners[k] == nil {
			owners[k] = map[string]bool{}
		}
		owners[k][r[6]] = true
	}
	if len(owners["hq"]) != 12 || len(owners["street"]) != 15 || len(owners["unit"]) != 6150 {
		t.Errorf("plan owners: %d hq, %d street, %d unit", len(owners["hq"]), len(owners["street"]), len(owners["unit"]))
	}
}

func TestSameSeedByteIdentical(t *testing.T) {
	if testing.Short() {
		t.Skip("generates two days of every feed twice")
	}
	cfg := testConfig()
	a, b, c := t.TempDir(), t.TempDir(), t.TempDir()
	for _, d := range []string{a, b} {
		if _, err := Generate(cfg, d, testUntil, 2, nil); err != nil {
			t.Fatal(err)
		}
	}
	cfg2 := cfg
	cfg2.Seed++
	if _, err := Generate(cfg2, c, testUntil, 2, nil); err != nil {
		t.Fatal(err)
	}
	files := 0
	differ := 0
	filepath.WalkDir(a, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(a, p)
		x, _ := os.ReadFile(p)
		y, err := os.ReadFile(filepath.Join(b, rel))
		if err != nil {
			t.Errorf("%s missing in the second run", rel)
			return nil
		}
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs between two runs with the same seed", rel)
		}
		if z, err := os.ReadFile(filepath.Join(c, rel)); err != nil || !bytes.Equal(x, z) {
			differ++
		}
		files++
		return nil
	})
	if files < 20 {
		t.Errorf("only %d files generated", files)
	}
	if differ < files/2 {
		t.Errorf("another seed changed only %d of %d files", differ, files)
	}
}

func TestGroundTruthMatchesFeeds(t *testing.T) {
	if testing.Short() {
		t.Skip("generates a week of every feed")
	}
	cfg := testConfig()
	dir := t.TempDir()
	res, err := Generate(cfg, dir, testUntil, 7, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("world %d rows in %v; feeds %v in %v", res.WorldRows, res.WorldTime, res.FeedRows, res.FeedTime)
	gt, err := ReadGroundTruth(filepath.Join(dir, GroundTruthFile))
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, in := range gt {
		kinds[in.Kind]++
		if !(in.Start.Before(in.Peak) && in.Peak.Before(in.End)) || in.Start.Before(res.Epoch) || !in.Start.Before(res.Until) {
			t.Errorf("%s: start %v peak %v end %v outside the history or unordered", in.ID, in.Start, in.Peak, in.End)
		}
	}
	for _, k := range []string{KindCrowdSurge, KindCrowdEvent, KindPipeBurst, KindRainstorm, KindFireCluster} {
		if kinds[k] == 0 {
			t.Errorf("no %s in the ground truth: %v", k, kinds)
		}
	}
	// mobile signal: people per (cell, window)
	people := map[string]map[string]float64{}
	files, _ := filepath.Glob(filepath.Join(dir, FeedsDir, FeedMobile, "*.csv"))
	for _, f := range files {
		_, rows := readCSV(t, f)
		for _, r := range rows {
			if people[r[1]] == nil {
				people[r[1]] = map[string]float64{}
			}
			v, _ := strconv.ParseFloat(r[2], 64)
			people[r[1]][r[0]] = v
		}
	}
	sumAt := func(cells []string, at time.Time) float64 {
		var s float64
		m := people[ts(at.Truncate(5*time.Minute))]
		if m == nil {
			t.Fatalf("no mobile-signal window at %v", at)
		}
		for _, c := range cells {
			s += m[c]
		}
		return s
	}
	var water []WaterMsg
	files, _ = filepath.Glob(filepath.Join(dir, FeedsDir, FeedWater, "*.jsonl"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
			var m WaterMsg
			if err := json.Unmarshal(line, &m); err != nil {
				t.Fatal(err)
			}
			water = append(water, m)
		}
	}
	var calls []Call
	files, _ = filepath.Glob(filepath.Join(dir, FeedsDir, FeedCalls, "*.jsonl"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
			var c Call
			if err := json.Unmarshal(line, &c); err != nil {
				t.Fatal(err)
			}
			calls = append(calls, c)
		}
	}
	rainAt := map[string]float64{}
	files, _ = filepath.Glob(filepath.Join(dir, FeedsDir, FeedWeather, "*.csv"))
	for _, f := range files {
		col, rows := readCSV(t, f)
		for _, r := range rows {
			y, _ := strconv.Atoi(r[col["year"]])
			mo, _ := strconv.Atoi(r[col["month"]])
			d, _ := strconv.Atoi(r[col["day"]])
			h, _ := strconv.Atoi(r[col["hour"]])
			v, _ := strconv.ParseFloat(r[col["RAIN"]], 64)
			rainAt[ts(time.Date(y, time.Month(mo), d, h, 0, 0, 0, Shanghai))] = v
		}
	}
	// venue counts: people per (venue, window), direction total
	world, err := NewWorld(cfg, res.Epoch)
	if err != nil {
		t.Fatal(err)
	}
	venueAt := map[string]float64{}
	files, _ = filepath.Glob(filepath.Join(dir, FeedsDir, FeedVenue, "*.csv"))
	for _, f := range files {
		col, rows := readCSV(t, f)
		for _, r := range rows {
			if r[col["direction"]] == "total" {
				v, _ := strconv.ParseFloat(r[col["people"]], 64)
				venueAt[r[col["site_id"]]+"@"+r[col["observed_at"]]] = v
			}
		}
	}
	if len(venueAt) != 7*288*len(venueSpecs) {
		t.Errorf("%d venue counts (total), want one per venue and 5-min window: %d", len(venueAt), 7*288*len(venueSpecs))
	}
	for _, in := range gt {
		if in.Kind != KindCrowdSurge && in.Kind != KindCrowdEvent {
			continue
		}
		v, _ := world.VenueByID(in.VenueID)
		at := ts(in.Peak.Truncate(5 * time.Minute))
		n, ok := venueAt[in.VenueID+"@"+at]
		if !ok || v.Capacity == 0 {
			t.Fatalf("%s: no venue count of %s at its peak %s", in.ID, in.VenueID, at)
		}
		if d := n/float64(in.VenuePeople) - 1; d > 0.12 || d < -0.12 {
			t.Errorf("%s: venue count %.0f at the peak, ground truth venue_people %d", in.ID, n, in.VenuePeople)
		}
		if in.Kind == KindCrowdSurge && n < float64(v.Capacity) || in.Kind == KindCrowdEvent && n >= 0.7*float64(v.Capacity) {
			t.Errorf("%s (%s): %.0f people at the peak for a capacity of %d", in.ID, in.Kind, n, v.Capacity)
		}
		// the venue's people are part of its cells' mobile-signal counts
		if cells := sumAt(in.GridCellIDs, in.Peak); cells < 0.95*n {
			t.Errorf("%s: %.0f people in the venue's cells but %.0f in the venue", in.ID, cells, n)
		}
	}
	for _, in := range gt {
		switch in.Kind {
		case KindCrowdSurge:
			peak := sumAt(in.GridCellIDs, in.Peak)
			dayBefore := sumAt(in.GridCellIDs, in.Peak.Add(-24*time.Hour))
			before := sumAt(in.GridCellIDs, in.Start.Add(-time.Hour))
			if math.Abs(peak-float64(in.PeakPeople)) > 0.12*float64(in.PeakPeople) {
				t.Errorf("%s: %0.f people at the peak in its cells, ground truth says %d", in.ID, peak, in.PeakPeople)
			}
			if peak < 1.3*dayBefore || peak < 1.3*before {
				t.Errorf("%s: peak %.0f not a surge over the day before (%.0f) or the hour before the start (%.0f)", in.ID, peak, dayBefore, before)
			}
		case KindPipeBurst:
			var atPeak, before *WaterMsg
			for i, m := range water {
				if m.SensorID != in.SensorID {
					continue
				}
				tm, _ := time.Parse(time.RFC3339, m.ObservedAt)
				if tm.Equal(in.Peak.Truncate(cfg.Rates.WaterInterval)) {
					atPeak = &water[i]
				}
				if tm.Equal(in.Start.Add(-time.Hour).Truncate(cfg.Rates.WaterInterval)) {
					before = &water[i]
				}
			}
			if atPeak == nil || before == nil {
				t.Fatalf("%s: no reading of %s around the burst", in.ID, in.SensorID)
			}
			if !atPeak.Alarm || atPeak.Value > 0.7*before.Value || before.Alarm {
				t.Errorf("%s: pressure %v (alarm %v) at the peak vs %v (alarm %v) before", in.ID, atPeak.Value, atPeak.Alarm, before.Value, before.Alarm)
			}
		case KindRainstorm:
			peakRain := rainAt[ts(in.Peak.Truncate(time.Hour))]
			if peakRain < 0.6*in.PeakRainMM {
				t.Errorf("%s: rain %v mm at the peak hour, ground truth peak %v", in.ID, peakRain, in.PeakRainMM)
			}
			alarms := 0
			for _, m := range water {
				tm, _ := time.Parse(time.RFC3339, m.ObservedAt)
				if m.Kind == "water_level" && m.Alarm && !tm.Before(in.Start) && tm.Before(in.End.Add(3*time.Hour)) {
					alarms++
				}
			}
			if alarms == 0 {
				t.Errorf("%s: no waterlogging alarm during the storm", in.ID)
			}
		case KindFireCluster:
			n := 0
			for _, c := range calls {
				tm, _ := time.Parse(time.RFC3339, c.ReceivedAt)
				if c.Category == "fire" && !tm.Before(in.Start) && tm.Before(in.End) && distM(c.Longitude, c.Latitude, in.Longitude, in.Latitude) < 400 {
					n++
				}
			}
			if n < in.Calls {
				t.Errorf("%s: %d fire calls within 400 m during it, ground truth says %d", in.ID, n, in.Calls)
			}
		}
	}
	// the diurnal pattern: the district's total at 03:00 differs from 15:00 on a weekday
	var keys []string
	for k := range people {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) != 7*288 {
		t.Errorf("%d mobile-signal windows, want %d", len(keys), 7*288)
	}
}
