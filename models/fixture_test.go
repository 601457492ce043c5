package models

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// The hand-made fixture: 23 enterprises on 2026-06-30 (Beijing time), each
// built to exercise one rule of risk_config.v1.yaml, with the score and
// level worked out by hand below. Enterprises lie 0.02° of longitude apart
// (≈ 6.7 grid squares of 0.003°), so "nearby" events of one never reach
// another. The day's cut-off is 2026-07-01 00:00 +08 = 2026-06-30 16:00 UTC.
//
// Points (v1): base by inherent level red 60 / orange 40 / yellow 20 / blue 0;
// overdue major hazard 20 each (cap 40); other open hazard 3 each (cap 15);
// failed inspection in 365 days 5 each (cap 15); per 5 emergency calls nearby
// in 90 days 4 (cap 12); per 5 police cases 3 (cap 9); per 10 complaints 2
// (cap 8); no or unknown liability insurance 5; crowd peak ≥ 5000 in the
// community in 7 days 5; adverse weather in 24 h 5. Score = min(100, sum).
// Score level: ≥ 80 red, ≥ 60 orange, ≥ 40 yellow, else blue; final level =
// the higher of score level and inherent level (floor_at_inherent = 1).
var fixtureExpected = []struct {
	id, inherent string
	score        int
	level        string
	why          string
}{
	{"E01", "blue", 0, "blue", "no risk sources → blue, nothing else"},
	{"E02", "blue", 0, "blue", "D = 3×6×3 = 54 ≤ 70 → blue"},
	{"E03", "yellow", 20, "yellow", "D = 3×6×7 = 126 → yellow, base 20; score level blue, floored to yellow"},
	{"E04", "orange", 40, "orange", "D = 6×6×7 = 252 → orange, base 40; score level yellow, floored to orange"},
	{"E05", "red", 60, "red", "D = 10×6×7 = 420 → red, base 60; score level orange, floored to red"},
	{"E06", "orange", 40, "orange", "D = 2×4×40 = 320 exactly → orange (red needs D > 320)"},
	{"E07", "yellow", 20, "yellow", "D = 1×4×40 = 160 exactly → yellow (orange needs D > 160)"},
	{"E08", "blue", 0, "blue", "D = 1×7×10 = 70 exactly → blue (yellow needs D > 70)"},
	{"E09", "red", 65, "red", "sources 54, 126, 420 → inherent red (就高) 60; uninsured +5 = 65"},
	{"E10", "blue", 20, "blue", "one overdue major hazard +20 = 20 → blue"},
	{"E11", "blue", 40, "yellow", "three overdue major hazards: min(40, 60) = 40 → yellow"},
	{"E12", "yellow", 63, "orange", "yellow 20 + two overdue major 40 + one open general 3 = 63 → orange"},
	{"E13", "orange", 95, "red", "orange 40 + two overdue major 40 + six open general min(15, 18) = 95 → red"},
	{"E14", "blue", 26, "blue", "major not yet due +3, general overdue +3, rectified before cut-off 0, major rectified after cut-off (overdue on the day) +20 = 26"},
	{"E15", "blue", 15, "blue", "four failed inspections in 365 days min(15, 20); one older, one 'rectify', one pass: 0 → 15"},
	{"E16", "blue", 8, "blue", "12 calls nearby in 90 days: 4 × floor(12/5) = 8; 3 calls 0.01° away and 5 older calls ignored"},
	{"E17", "blue", 10, "blue", "10 police cases: 3 × 2 = 6; 25 complaints: 2 × floor(25/10) = 4 → 10"},
	{"E18", "blue", 10, "blue", "community C2 peak 6000 people ≥ 5000: +5; uninsured +5 → 10"},
	{"E19", "red", 100, "red", "red 60 + two overdue major 40 + uninsured 5 = 105, capped at 100"},
	{"E20", "yellow", 47, "yellow", "yellow 20 + four failed inspections 15 + 30 calls nearby min(12, 24) = 47 → yellow"},
	{"E21", "orange", 54, "orange", "orange 40 + uninsured 5 + two open general 6 + five police cases 3 = 54; score level yellow, floored to orange"},
	{"E22", "blue", 5, "blue", "insurance unknown (NULL) counts as uninsured: +5"},
	{"E23", "blue", 5, "blue", "two versions of the record: the newer says uninsured → +5"},
}

// fixtureTables is the raw data of the fixture as DuckDB queries.
func fixtureTables() map[string]string {
	lon := func(i int) float64 { return 116.30 + 0.02*float64(i) }
	const lat = 39.91
	var ents []string
	insured := map[int]string{9: "false", 18: "false", 19: "false", 21: "false", 22: "NULL", 23: "true"}
	for i := 1; i <= 23; i++ {
		ins, ok := insured[i]
		if !ok {
			ins = "true"
		}
		comm, street := "C1", "110102001"
		if i == 18 {
			comm = "C2"
		}
		if i%2 == 0 {
			street = "110102002"
		}
		industry := []string{"餐饮", "仓储", "危化品"}[i%3]
		ents = append(ents, fmt.Sprintf("('E%02d', TIMESTAMPTZ '2026-01-01 00:00:00+00', '单位%02d', '%s', '%s', '%s', %.4f, %.4f, %s)",
			i, i, industry, street, comm, lon(i), lat, ins))
	}
	// E23's newer record: uninsured.
	ents = append(ents, fmt.Sprintf("('E23', TIMESTAMPTZ '2026-03-01 00:00:00+00', '单位23', '餐饮', '110102001', 'C1', %.4f, %.4f, false)", lon(23), lat))
	enterprises := "SELECT id, updated_at, name, industry, street_code, community_code, longitude, latitude, has_liability_insurance FROM (VALUES " +
		strings.Join(ents, ",\n") + ") AS t(id, updated_at, name, industry, street_code, community_code, longitude, latitude, has_liability_insurance)"

	type rs struct {
		ent     string
		l, e, c float64
	}
	sources := []rs{
		{"E02", 3, 6, 3}, {"E03", 3, 6, 7}, {"E04", 6, 6, 7}, {"E05", 10, 6, 7}, {"E06", 2, 4, 40}, {"E07", 1, 4, 40}, {"E08", 1, 7, 10},
		{"E09", 3, 6, 3}, {"E09", 3, 6, 7}, {"E09", 10, 6, 7},
		{"E12", 3, 6, 7}, {"E13", 6, 6, 7}, {"E19", 10, 6, 7}, {"E20", 3, 6, 7}, {"E21", 6, 6, 7},
	}
	var rsRows []string
	for i, s := range sources {
		rsRows = append(rsRows, fmt.Sprintf("('R%02d', TIMESTAMPTZ '2026-01-01 00:00:00+00', '%s', '风险源%02d', %g, %g, %g)", i+1, s.ent, i+1, s.l, s.e, s.c))
	}
	// An older assessment of R04 (E05) that the newer one replaces.
	rsRows = append(rsRows, "('R04', TIMESTAMPTZ '2025-01-01 00:00:00+00', 'E05', '风险源04', 1, 1, 1)")
	riskSources := "SELECT id, updated_at, enterprise_id, name, CAST(NULL AS VARCHAR) AS kind, lec_l::DOUBLE AS lec_l, lec_e::DOUBLE AS lec_e, lec_c::DOUBLE AS lec_c FROM (VALUES " +
		strings.Join(rsRows, ", ") + ") AS t(id, updated_at, enterprise_id, name, lec_l, lec_e, lec_c)"

	// Hazards: (id, enterprise, found, level, deadline, rectified, status).
	hz := [][]string{}
	add := func(ent, found, level, deadline, rectified, status string) {
		hz = append(hz, []string{fmt.Sprintf("H%03d", len(hz)+1), ent, found, level, deadline, rectified, status})
	}
	overdueMajor := func(ent string) { add(ent, "2026-05-01 02:00:00+00", "major", "2026-06-01", "", "overdue") }
	openGeneral := func(ent string) { add(ent, "2026-06-20 02:00:00+00", "general", "2026-07-20", "", "open") }
	overdueMajor("E10")
	for range 3 {
		overdueMajor("E11")
	}
	overdueMajor("E12")
	overdueMajor("E12")
	openGeneral("E12")
	overdueMajor("E13")
	overdueMajor("E13")
	for range 6 {
		openGeneral("E13")
	}
	add("E14", "2026-06-10 02:00:00+00", "major", "2026-07-10", "", "open")
	add("E14", "2026-05-10 02:00:00+00", "general", "2026-06-10", "", "overdue")
	add("E14", "2026-05-10 02:00:00+00", "major", "2026-06-15", "2026-06-20 02:00:00+00", "rectified")
	add("E14", "2026-05-10 02:00:00+00", "major", "2026-06-15", "2026-07-02 02:00:00+00", "rectified")
	// found after the cut-off: not known on the day
	add("E14", "2026-06-30 17:00:00+00", "major", "2026-06-01", "", "overdue")
	overdueMajor("E19")
	overdueMajor("E19")
	openGeneral("E21")
	openGeneral("E21")
	var hzRows []string
	for _, h := range hz {
		deadline, rect := "NULL", "NULL"
		if h[4] != "" {
			deadline = "DATE '" + h[4] + "'"
		}
		if h[5] != "" {
			rect = "TIMESTAMPTZ '" + h[5] + "'"
		}
		hzRows = append(hzRows, fmt.Sprintf("('%s', '%s', TIMESTAMPTZ '%s', '%s', %s, %s, '%s')", h[0], h[1], h[2], h[3], deadline, rect, h[6]))
	}
	// H001 was first reported open; the overdue record replaces it.
	hzRows = append(hzRows, "('H001', 'E10', TIMESTAMPTZ '2026-05-01 02:00:00+00', 'major', DATE '2026-06-01', NULL, 'open')")
	hazards := "SELECT id, enterprise_id, found_at, level, CAST(NULL AS VARCHAR) AS description, CAST(deadline AS DATE) AS deadline, CAST(rectified_at AS TIMESTAMPTZ) AS rectified_at, status, CAST(NULL AS VARCHAR) AS risk_source_id FROM (VALUES " +
		strings.Join(hzRows, ",\n") + ") AS t(id, enterprise_id, found_at, level, deadline, rectified_at, status)"

	var insp []string
	addInsp := func(ent, at, result string) {
		insp = append(insp, fmt.Sprintf("('I%03d', '%s', TIMESTAMPTZ '%s', '%s')", len(insp)+1, ent, at, result))
	}
	for _, at := range []string{"2026-06-01 02:00:00+00", "2026-03-01 02:00:00+00", "2025-09-01 02:00:00+00", "2025-07-15 02:00:00+00"} {
		addInsp("E15", at, "fail")
		addInsp("E20", at, "fail")
	}
	addInsp("E15", "2025-06-01 02:00:00+00", "fail") // older than 365 days
	addInsp("E15", "2026-06-10 02:00:00+00", "rectify")
	addInsp("E15", "2026-06-11 02:00:00+00", "pass")
	addInsp("E15", "2026-07-01 02:00:00+00", "fail") // after the cut-off
	inspections := "SELECT id, enterprise_id, inspected_at, result FROM (VALUES " + strings.Join(insp, ", ") + ") AS t(id, enterprise_id, inspected_at, result)"

	// Nearby events at the enterprise's own coordinates (or 0.01° east).
	events := func(ent, n int, at string, dlon float64) string {
		return fmt.Sprintf("SELECT TIMESTAMPTZ '%s' + to_minutes(i) AS t, %.4f AS lon, %.4f AS lat FROM range(%d) r(i)", at, lon(ent)+dlon, lat, n)
	}
	calls := strings.Join([]string{
		events(16, 12, "2026-06-01 00:00:00+00", 0.0005),
		events(16, 3, "2026-06-01 00:00:00+00", 0.01),
		events(16, 5, "2026-03-01 00:00:00+00", 0),
		events(20, 30, "2026-06-25 00:00:00+00", -0.002),
	}, " UNION ALL ")
	incidents := "SELECT 'C' || row_number() OVER () AS id, t AS received_at, 'fire' AS category, lon AS longitude, lat AS latitude FROM (" + calls + ")"
	police := "SELECT t AS occurred_at, 'theft' AS category, lon AS longitude, lat AS latitude FROM (" +
		events(17, 10, "2026-06-15 00:00:00+00", 0.001) + " UNION ALL " + events(21, 5, "2026-06-15 00:00:00+00", 0) + ")"
	complaints := "SELECT 'Q' || row_number() OVER () AS id, t AS requested_at, 'closed' AS status, lon AS longitude, lat AS latitude FROM (" +
		events(17, 25, "2026-06-20 00:00:00+00", -0.001) + ")"

	return map[string]string{
		"raw.enterprises":  enterprises,
		"raw.risk_sources": riskSources,
		"raw.hazards":      hazards,
		"raw.inspections":  inspections,
		"raw.incidents":    incidents,
		"raw.police_cases": police,
		"raw.city_events":  complaints,
		"raw.grid_cells": "SELECT * FROM (VALUES ('G1', TIMESTAMPTZ '2026-01-01 00:00:00+00', '110102001', 'C2', 116.66, 39.91), ('G2', TIMESTAMPTZ '2026-01-01 00:00:00+00', '110102001', 'C1', 116.40, 39.91)) " +
			"AS t(grid_cell_id, updated_at, street_code, community_code, center_longitude, center_latitude)",
		// G1 (C2) peaks at 6000 two days before; G2 (C1) peaks at 4000 in the window, 9000 a month earlier.
		"raw.mobile_signal": "SELECT * FROM (VALUES ('G1', TIMESTAMPTZ '2026-06-28 04:00:00+00', 6000::BIGINT), ('G1', TIMESTAMPTZ '2026-06-28 05:00:00+00', 100::BIGINT), " +
			"('G2', TIMESTAMPTZ '2026-06-29 04:00:00+00', 4000::BIGINT), ('G2', TIMESTAMPTZ '2026-06-01 04:00:00+00', 9000::BIGINT)) AS t(grid_cell_id, window_start, people_count)",
		// A rainstorm on the afternoon of 06-29 (Beijing); quiet on 06-30.
		"raw.weather": "SELECT * FROM (VALUES ('guanyuan', TIMESTAMPTZ '2026-06-29 10:00:00+00', 40.0, 26.0), ('guanyuan', TIMESTAMPTZ '2026-06-30 06:00:00+00', 0.0, 28.0)) " +
			"AS t(station, observed_at, rain_mm, temperature_c)",
		"raw.streets": "SELECT * FROM (VALUES ('110102001', TIMESTAMPTZ '2026-01-01 00:00:00+00', '西长安街街道', 'Xichang''anjie', 50000::BIGINT, 116.37, 39.90), " +
			"('110102002', TIMESTAMPTZ '2026-01-01 00:00:00+00', '新街口街道', 'Xinjiekou', 60000::BIGINT, 116.37, 39.94)) AS t(adcode, updated_at, name_zh, name_en, population, center_longitude, center_latitude)",
		"raw.communities": "SELECT * FROM (VALUES ('C1', TIMESTAMPTZ '2026-01-01 00:00:00+00', '社区一', 'Community 1', '110102001'), ('C2', TIMESTAMPTZ '2026-01-01 00:00:00+00', '社区二', 'Community 2', '110102002')) " +
			"AS t(community_code, updated_at, name_zh, name_en, street_code)",
	}
}

func loadFixture(t *testing.T) *testLake {
	tl := newTestLake(t)
	for table, q := range fixtureTables() {
		tl.load(table, q)
	}
	return tl
}

// TestRiskFixture runs every model on the fixture and checks each
// enterprise's inherent level, score and level against the hand-computed
// values, plus the factor texts, the roll-ups and the lists.
func TestRiskFixture(t *testing.T) {
	tl := loadFixture(t)
	p := embeddedProject(t)
	r := tl.runner(p, nil)
	ctx := context.Background()
	// 06-29 and 06-30: a two-day backfill (the storm is on 06-29 only).
	rep, err := r.Run(ctx, RunOptions{Vars: map[string]any{"as_of_date": "2026-06-30", "start_date": "2026-06-29"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Models) != len(p.Models) {
		t.Fatalf("ran %d models, project has %d", len(rep.Models), len(p.Models))
	}
	got := map[string]string{}
	for _, row := range tl.query("SELECT enterprise_id, inherent_level, score, level FROM marts.enterprise_risk ORDER BY enterprise_id") {
		f := strings.Split(row, "|")
		got[f[0]] = strings.Join(f[1:], "|")
	}
	if len(got) != len(fixtureExpected) {
		t.Errorf("enterprise_risk has %d rows, want %d", len(got), len(fixtureExpected))
	}
	for _, e := range fixtureExpected {
		want := fmt.Sprintf("%s|%d|%s", e.inherent, e.score, e.level)
		if got[e.id] != want {
			t.Errorf("%s: got inherent|score|level %s, want %s (%s)", e.id, got[e.id], want, e.why)
		}
	}
	// Factor texts, in words, top three by points.
	for id, want := range map[string][2]string{
		"E13": {"固有风险较大（D=252.0） +40；逾期未整改重大隐患 2 项 +40；未整改隐患 6 项 +15", "inherent high (D=252.0) +40; 2 overdue major hazard(s) +40; 6 open hazard(s) +15"},
		"E09": {"固有风险重大（D=420.0） +60；未投保安全生产责任险 +5", "inherent major (D=420.0) +60; no safety liability insurance +5"},
		"E01": {"", ""},
	} {
		rows := tl.query("SELECT top_factors_zh, top_factors_en FROM marts.enterprise_risk WHERE enterprise_id = '" + id + "'")
		if len(rows) != 1 || rows[0] != want[0]+"|"+want[1] {
			t.Errorf("%s factors: got %q, want %q", id, rows, want[0]+"|"+want[1])
		}
	}
	// 06-29: the storm adds 5 to everyone (E01: 0 → 5).
	if rows := tl.query("SELECT score, p_weather FROM marts.enterprise_risk_daily WHERE enterprise_id = 'E01' ORDER BY as_of_date"); strings.Join(rows, ",") != "5|5,0|0" {
		t.Errorf("E01 by day (06-29, 06-30): %v, want 5|5,0|0", rows)
	}
	if rows := tl.query("SELECT DISTINCT risk_config_version FROM marts.enterprise_risk"); strings.Join(rows, ",") != "v1" {
		t.Errorf("config version: %v", rows)
	}
	// Roll-ups: street 110102001 has the odd-numbered units.
	rows := tl.query("SELECT street_code, units, red_units, orange_units, yellow_units, blue_units FROM marts.risk_by_street ORDER BY street_code")
	counts := map[string][5]int{}
	for _, e := range fixtureExpected {
		var n int
		fmt.Sscanf(e.id, "E%d", &n)
		st := "110102002"
		if n%2 == 1 {
			st = "110102001"
		}
		c := counts[st]
		c[0]++
		c[map[string]int{"red": 1, "orange": 2, "yellow": 3, "blue": 4}[e.level]]++
		counts[st] = c
	}
	var want []string
	for _, st := range []string{"110102001", "110102002"} {
		c := counts[st]
		want = append(want, fmt.Sprintf("%s|%d|%d|%d|%d|%d", st, c[0], c[1], c[2], c[3], c[4]))
	}
	if strings.Join(rows, ",") != strings.Join(want, ",") {
		t.Errorf("risk_by_street: got %v, want %v", rows, want)
	}
	// The street chief's list: every red and orange unit, nothing else.
	var redOrange []string
	for _, e := range fixtureExpected {
		if e.level == "red" || e.level == "orange" {
			redOrange = append(redOrange, e.id)
		}
	}
	if rows := tl.query("SELECT enterprise_id FROM marts.street_watchlist ORDER BY enterprise_id"); strings.Join(rows, ",") != strings.Join(redOrange, ",") {
		t.Errorf("street_watchlist: got %v, want %v", rows, redOrange)
	}
	// Overdue hazards on 06-30: E10 1, E11 3, E12 2, E13 2, E14 2 (general overdue + the major rectified later), E19 2.
	if rows := tl.query("SELECT enterprise_id || ':' || count(*) FROM marts.overdue_hazards GROUP BY enterprise_id ORDER BY enterprise_id"); strings.Join(rows, ",") != "E10:1,E11:3,E12:2,E13:2,E14:2,E19:2" {
		t.Errorf("overdue_hazards: %v", rows)
	}
	// Data tests all pass on the fixture.
	if res, err := r.Test(ctx, nil, map[string]any{"as_of_date": "2026-06-30"}); err != nil {
		t.Errorf("data tests: %v", err)
	} else if len(res) < 20 {
		t.Errorf("only %d data tests ran", len(res))
	}
}

// TestLevelFloorConfig: with floor_at_inherent = 0 the level follows the
// score alone, so red units scoring 60–79 become orange.
func TestLevelFloorConfig(t *testing.T) {
	tl := loadFixture(t)
	r := tl.runner(embeddedProject(t), nil)
	if _, err := r.Run(context.Background(), RunOptions{Vars: map[string]any{"as_of_date": "2026-06-30", "floor_at_inherent": 0}}); err != nil {
		t.Fatal(err)
	}
	rows := tl.query("SELECT enterprise_id || ':' || level FROM marts.enterprise_risk WHERE enterprise_id IN ('E03', 'E05', 'E09', 'E21') ORDER BY 1")
	if strings.Join(rows, ",") != "E03:blue,E05:orange,E09:orange,E21:yellow" {
		t.Errorf("without the floor: %v", rows)
	}
}
