package dashboards_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// waterData writes what the water authority's page reads: rain, a
// waterlogging point with its gauge, pipe sensors (one in alarm) and a
// rainstorm warning.
func (e *env) waterData() {
	e.write(e.schema("weather"),
		map[string]any{"station": "Guanyuan", "observed_at": e.day(1, 10), "rain_mm": 12.5},
		map[string]any{"station": "Guanyuan", "observed_at": e.day(1, 11), "rain_mm": 20.0},
		map[string]any{"station": "Guanyuan", "observed_at": e.day(0, 9), "rain_mm": 3.0})
	e.write(e.schema("waterlogging_points"),
		map[string]any{"id": "WL1", "updated_at": e.day(30, 0), "name": "广安门桥下凹桥区", "kind": "underpass", "warn_depth_m": 0.15, "sensor_id": "WL1-L", "street_code": st1, "longitude": 116.35, "latitude": 39.89},
		map[string]any{"id": "WL2", "updated_at": e.day(30, 0), "name": "新街口低洼院落", "kind": "low_courtyard", "warn_depth_m": 0.2, "sensor_id": "WL2-L", "street_code": st3, "longitude": 116.37, "latitude": 39.94})
	e.write(e.schema("water_sensors"),
		map[string]any{"sensor_id": "WL1-L", "updated_at": e.day(30, 0), "kind": "water_level", "unit": "m", "street_code": st1, "waterlogging_point_id": "WL1"},
		map[string]any{"sensor_id": "PP001", "updated_at": e.day(30, 0), "kind": "pressure", "unit": "MPa", "site_kind": "pipe", "street_code": st3, "normal_min": 0.2, "normal_max": 0.5, "longitude": 116.37, "latitude": 39.94})
	e.write(e.schema("water_telemetry"),
		map[string]any{"sensor_id": "WL1-L", "observed_at": e.day(0, 9), "kind": "water_level", "value": 0.32, "unit": "m", "seq": 1, "street_code": st1},
		map[string]any{"sensor_id": "PP001", "observed_at": e.day(0, 8), "kind": "pressure", "value": 0.35, "unit": "MPa", "seq": 1, "site_kind": "pipe", "alarm": false, "street_code": st3},
		map[string]any{"sensor_id": "PP001", "observed_at": e.day(0, 9), "kind": "pressure", "value": 0.12, "unit": "MPa", "seq": 2, "site_kind": "pipe", "alarm": true, "street_code": st3},
		map[string]any{"sensor_id": "PF002", "observed_at": e.day(0, 9), "kind": "flow", "value": 80.0, "unit": "m³/h", "seq": 1, "site_kind": "pipe", "alarm": false, "street_code": st3})
	at := time.Now().Add(-time.Hour)
	e.write(e.schema("warnings"), map[string]any{"warning_id": "RS1", "seq": 50, "kind": "rainstorm", "rule": "rainstorm", "subject_type": "district",
		"subject_id": "xicheng", "subject_name_zh": "西城区", "subject_name_en": "Xicheng", "level": "blue", "state": "raised", "predicted": false,
		"message_zh": "西城区暴雨蓝色预警", "message_en": "Xicheng blue rainstorm warning", "event_time": at, "transition_at": at, "raised_at": at})
}

type deptAnswer struct {
	Department  string
	Departments []map[string]string
	Cards       []struct {
		ID, Kind string
		Section  section
	}
}

func (d deptAnswer) card(t *testing.T, id string) section {
	t.Helper()
	for _, c := range d.Cards {
		if c.ID == id {
			return c.Section
		}
	}
	t.Fatalf("no card %s in %+v", id, d.Cards)
	return section{}
}

// A department's home page holds its own data and nothing it may not
// see: the water authority its warnings, rain, waterlogging points with
// their depth and pipe sensors with the alarm first; it cannot open
// another department's page; a leader opens any.
func TestDeptPages(t *testing.T) {
	e := newEnv(t)
	e.waterData()
	c := e.client()
	c.login("dept_water")
	var d deptAnswer
	c.json("/api/dash/dept", &d)
	if d.Department != "water" || len(d.Departments) != 1 {
		t.Fatalf("dept_water's page: %s, departments %v", d.Department, d.Departments)
	}
	for _, cd := range d.Cards {
		if cd.Section.Missing != "" {
			t.Errorf("dept_water's card %s: %s %s", cd.ID, cd.Section.Missing, cd.Section.Detail)
		}
	}
	if w := d.card(t, "water_warnings").Rows; len(w) != 1 || w[0]["rainstorm"].(float64) != 1 || w[0]["red"].(float64) != 0 {
		t.Errorf("water warnings %v: want the rainstorm warning only (crowd warnings are not the department's)", w)
	}
	var rain float64
	for _, r := range d.card(t, "rain_daily").Rows {
		rain += r["n"].(float64)
	}
	if rain != 35.5 {
		t.Errorf("rain over the range %v mm, want 35.5", rain)
	}
	if wl := d.card(t, "waterlogging_points").Rows; len(wl) != 2 || wl[0]["name"] != "广安门桥下凹桥区" || wl[0]["depth_m"].(float64) != 0.32 || wl[1]["depth_m"] != nil {
		t.Errorf("waterlogging points %v: want 广安门 first at 0.32 m, 新街口 with no reading", wl)
	}
	if ps := d.card(t, "pipe_sensors").Rows; len(ps) != 2 || ps[0]["sensor_id"] != "PP001" || ps[0]["alarm"] != true || ps[0]["value"].(float64) != 0.12 {
		t.Errorf("pipe sensors %v: want PP001's latest reading, in alarm, first", ps)
	}
	if resp, b := c.do("GET", "/api/dash/dept?dept=police", nil, false); resp.StatusCode != 403 {
		t.Errorf("dept_water opening police's page: %d %s", resp.StatusCode, b)
	}
	// The water department now has its reference layers on the map.
	for _, layer := range []string{"waterlogging", "lifeline"} {
		var s section
		c.json("/api/dash/map/"+layer, &s)
		if s.Missing != "" || len(s.Rows) == 0 {
			t.Errorf("dept_water's %s layer: %+v", layer, s)
		}
	}

	l := e.client()
	l.login("leader")
	var p deptAnswer
	l.json("/api/dash/dept?dept=police", &p)
	if p.Department != "police" || len(p.Departments) < 6 {
		t.Fatalf("leader opening police: %s, %d departments", p.Department, len(p.Departments))
	}
	if vc := p.card(t, "venue_counts").Rows; len(vc) == 0 || vc[0]["name_zh"] == nil || vc[0]["people"] == nil {
		t.Errorf("police venue counts %v", vc)
	}
	var bad struct{ Error string }
	resp, b := l.do("GET", "/api/dash/dept?dept=nosuch", nil, false)
	json.Unmarshal(b, &bad)
	if resp.StatusCode != 404 || !strings.Contains(bad.Error, "没有该部门") {
		t.Errorf("unknown department: %d %s", resp.StatusCode, b)
	}
}

// The department user lands on its page and sees it drawn, in both languages.
func TestBrowserDeptPage(t *testing.T) {
	if testing.Short() {
		t.Skip("drives headless Chromium; skipped with -short")
	}
	e := newEnv(t)
	e.waterData()
	b := newBrowser(t, e.ctx)
	b.login(e.srv.URL, "dept_water")
	b.run("home", chromedp.Navigate(e.srv.URL+"/"), rendered("dept"))
	if got := b.text("#dept-name"); got != "水务局" {
		t.Errorf("page title %q", got)
	}
	if n := eval[int](b, `document.querySelectorAll("[data-missing]").length`); n != 0 {
		t.Errorf("%d cards say they have nothing to show", n)
	}
	if v := b.text(`[data-figure="rainstorm"] .v`); v != "1" {
		t.Errorf("rainstorm figure %q", v)
	}
	b.shot("dept-water")
	b.run("en", chromedp.Click(chromedp.CSS("#lang")), rendered("dept"))
	if got := b.text("#dept-name"); got != "Water Authority" {
		t.Errorf("page title in English %q", got)
	}
	b.shot("dept-water-en")
	b.run("back to zh", chromedp.Click(chromedp.CSS("#lang")), rendered("dept"))
}

// The emergency bureau's page shows the response service's timeline
// (marts.responses): two tasks of one response, acknowledged after 2 and
// 10 minutes (half within 5 min, median 6 min), one escalation, one failed
// delivery; the latest events without the notified/delivered noise.
func TestDeptResponseCards(t *testing.T) {
	e := newEnv(t)
	t0 := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	ev := func(seq int, min int, event, task, person, channel string) map[string]any {
		m := map[string]any{"seq": int64(seq), "at": t0.Add(time.Duration(min) * time.Minute), "event": event, "response_id": "R1",
			"kind": "crowd", "subject_id": "V1", "subject_name_zh": "西单文化广场", "street_code": st1, "warning_level": "yellow",
			"plan_id": "P-" + st1, "plan_level": "III", "opened_at": t0}
		if task != "" {
			m["task_id"] = task
		}
		if person != "" {
			m["person_id"], m["person_name"] = person, "张伟"
		}
		if channel != "" {
			m["channel"] = channel
		}
		return m
	}
	e.write(e.schema("responses"),
		ev(1, 0, "raised", "", "", ""), ev(2, 0, "activated", "", "", ""),
		ev(3, 0, "notified", "T1", "U1", "app"), ev(4, 0, "delivered", "T1", "U1", "app"),
		ev(5, 0, "notified", "T2", "U2", "sms"), ev(6, 0, "failed", "T2", "U2", "sms"),
		ev(7, 2, "acknowledged", "T1", "U1", ""), ev(8, 5, "escalated", "T2", "U3", ""),
		ev(9, 10, "acknowledged", "T2", "U3", ""), ev(10, 30, "closed", "", "U1", ""))
	c := e.client()
	c.login("leader")
	var d deptAnswer
	c.json("/api/dash/dept?dept=emergency", &d)
	k := d.card(t, "response_kpis")
	if k.Missing != "" || len(k.Rows) != 1 {
		t.Fatalf("response KPIs: %+v", k)
	}
	want := map[string]float64{"responses": 1, "response_tasks": 2, "acked_within_5min_pct": 50, "median_ack_min": 6, "escalations": 1, "failed_deliveries": 1}
	for key, v := range want {
		if got, _ := k.Rows[0][key].(float64); got != v {
			t.Errorf("%s = %v, want %v", key, k.Rows[0][key], v)
		}
	}
	tl := d.card(t, "response_timeline").Rows
	if len(tl) != 7 || tl[0]["event"] != "closed" || tl[len(tl)-1]["event"] != "raised" {
		t.Errorf("timeline %v: want 7 events (no notified/delivered), newest first", tl)
	}
}

// 一张图's responses layer: the open response at its venue with its plan
// level and acknowledged tasks; a closed one is not on the map.
func TestMapResponsesLayer(t *testing.T) {
	e := newEnv(t)
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	e.write(e.schema("venues"), map[string]any{"venue_id": "V1", "updated_at": e.day(30, 0), "name_zh": "西单文化广场", "kind": "commercial_district",
		"capacity_people": int64(6000), "longitude": 116.374, "latitude": 39.910, "street_code": st1})
	ev := func(seq int, resp, event, task string, wl string) map[string]any {
		m := map[string]any{"seq": int64(seq), "at": t0.Add(time.Duration(seq) * time.Minute), "event": event, "response_id": resp, "kind": "crowd",
			"subject_type": "venue", "subject_id": "V1", "subject_name_zh": "西单文化广场", "street_code": st1, "warning_level": wl,
			"plan_id": "P-" + st1, "plan_level": "III", "opened_at": t0}
		if task != "" {
			m["task_id"] = task
		}
		return m
	}
	e.write(e.schema("responses"), ev(1, "R1", "raised", "", "yellow"), ev(2, "R1", "activated", "", "yellow"), ev(3, "R1", "notified", "T1", "yellow"),
		ev(4, "R1", "notified", "T2", "yellow"), ev(5, "R1", "acknowledged", "T1", "yellow"),
		ev(6, "R2", "activated", "", "blue"), ev(7, "R2", "closed", "", "blue"))
	// A lifeline sensor's response, located by raw.water_sensors.
	e.write(e.schema("water_sensors"), map[string]any{"sensor_id": "PF9", "updated_at": e.day(30, 0), "kind": "flow", "unit": "m³/h", "street_code": st1,
		"longitude": 116.36, "latitude": 39.90})
	sensor := ev(8, "R3", "activated", "", "orange")
	sensor["subject_type"], sensor["subject_id"], sensor["kind"], sensor["opened_at"] = "sensor", "PF9", "lifeline", t0.Add(-time.Hour)
	e.write(e.schema("responses"), sensor)
	// A speed segment's (no coordinates: at its street's centre) and a
	// collision hot spot's (at its cell's corner).
	e.write(e.schema("streets"), map[string]any{"adcode": st1, "updated_at": e.day(30, 0), "name_zh": "西长安街街道", "center_longitude": 116.3720, "center_latitude": 39.9070})
	seg := ev(9, "R4", "activated", "", "yellow")
	seg["subject_type"], seg["subject_id"], seg["kind"], seg["opened_at"] = "segment", "SEG-0042", "traffic", t0.Add(-2*time.Hour)
	spot := ev(10, "R5", "activated", "", "yellow")
	spot["subject_type"], spot["subject_id"], spot["kind"], spot["opened_at"], spot["street_code"] = "segment", "spot:39.9050,116.3650", "traffic", t0.Add(-3*time.Hour), "110102999"
	e.write(e.schema("responses"), seg, spot)
	c := e.client()
	c.login("leader")
	var s section
	c.json("/api/dash/map/responses", &s)
	if s.Missing != "" || len(s.Rows) != 4 || s.Rows[1]["id"] != "R3" || s.Rows[1]["lat"].(float64) != 39.90 {
		t.Fatalf("responses layer: %+v, want R1, the sensor's R3, the segment's R4 and the hot spot's R5 (R2 is closed)", s)
	}
	if r := s.Rows[2]; r["id"] != "R4" || r["lon"].(float64) != 116.3720 || r["lat"].(float64) != 39.9070 || r["located"] != "street_centre" {
		t.Errorf("the speed segment's response: %v, want at the street's centre, located street_centre", r)
	}
	if r := s.Rows[3]; r["id"] != "R5" || r["lon"].(float64) != 116.3650 || r["lat"].(float64) != 39.9050 || r["located"] != "exact" {
		t.Errorf("the hot spot's response: %v, want at its corner, located exact", r)
	}
	r := s.Rows[0]
	if r["id"] != "R1" || r["plan_level"] != "III" || r["warning_level"] != "yellow" || r["tasks"].(float64) != 2 || r["acknowledged"].(float64) != 1 ||
		r["lon"].(float64) != 116.374 {
		t.Errorf("R1 on the map: %v", r)
	}
}

// The emergency bureau's inspection cards (issue 25): the latest plan's
// progress by street and by inspector, and hazards found and rectified
// over the range — worked out by hand below.
func TestDeptInspectionCards(t *testing.T) {
	e := newEnv(t)
	month := time.Date(e.day(0, 0).Year(), e.day(0, 0).Month(), 1, 0, 0, 0, 0, time.UTC)
	lo := time.Date(month.Year(), month.Month(), 1, 0, 0, 0, 0, shanghai)
	visit := func(no int, unit, street, inspector, name string, day int) map[string]any {
		return map[string]any{"month": month, "visit_no": int64(no), "enterprise_id": unit, "street_code": street, "inspector_id": inspector,
			"inspector_name": name, "day": month.AddDate(0, 0, day), "reason": "weighted", "seed": "42", "published_at": lo}
	}
	// An older month's plan is not shown.
	old := visit(1, "U9", st1, "I1", "李怡", 3)
	old["month"] = month.AddDate(0, -1, 0)
	e.write(e.schema("inspection_plans"), old,
		visit(1, "U1", st1, "I1", "李怡", 0), visit(2, "U2", st1, "I1", "李怡", 0), visit(3, "U3", st1, "I2", "万斌", 0), visit(4, "U4", st3, "I3", "张强", 0))
	// This month U1 (2 hazards) and U4 (none) were inspected; U2 last month only.
	ins := func(id, unit string, at time.Time, found int) map[string]any {
		return map[string]any{"id": id, "enterprise_id": unit, "inspected_at": at, "result": "pass", "hazards_found": int64(found)}
	}
	e.write(e.schema("inspections"), ins("X1", "U1", lo.Add(time.Hour), 2), ins("X2", "U4", lo.Add(2*time.Hour), 0), ins("X3", "U2", lo.Add(-time.Hour), 1))
	c := e.client()
	c.login("leader")
	var d deptAnswer
	c.json("/api/dash/dept?dept=emergency", &d)
	prog := d.card(t, "inspection_progress")
	if prog.Missing != "" || len(prog.Rows) != 2 {
		t.Fatalf("progress by street: %+v", prog)
	}
	r := prog.Rows[0]
	if r["street_code"] != st1 || r["planned"].(float64) != 3 || r["done"].(float64) != 1 || r["done_pct"].(float64) != 33.3 ||
		r["inspectors"].(float64) != 2 || r["hazards_per_100"].(float64) != 200 || r["plan_month"] != month.Format("2006-01") {
		t.Errorf("street %s: %v, want 3 planned, 1 done (33.3 %%), 2 inspectors, 200 hazards per 100", st1, r)
	}
	if r := prog.Rows[1]; r["street_code"] != st3 || r["done"].(float64) != 1 || r["hazards_per_100"].(float64) != 0 {
		t.Errorf("street %s: %v", st3, r)
	}
	people := d.card(t, "inspector_progress").Rows
	if len(people) != 3 {
		t.Fatalf("inspectors: %v", people)
	}
	byID := map[string]map[string]any{}
	for _, p := range people {
		byID[p["inspector_id"].(string)] = p
	}
	if p := byID["I1"]; p["planned"].(float64) != 2 || p["done"].(float64) != 1 || p["inspector_name"] != "李怡" {
		t.Errorf("I1: %v, want 2 planned, 1 done", p)
	}
	if p := byID["I2"]; p["done"].(float64) != 0 {
		t.Errorf("I2: %v, want nothing done", p)
	}
	// Rectification: due in the range, H2 on time, H3 late, H4 open; H5 due after the range.
	today := e.date(0)
	hz := func(id string, due time.Time, rect any) map[string]any {
		m := map[string]any{"id": id, "enterprise_id": "U1", "found_at": lo.Add(time.Hour), "level": "general", "status": "open", "deadline": due}
		if rect != nil {
			m["rectified_at"], m["status"] = rect, "rectified"
		}
		return m
	}
	e.write(e.schema("hazards"), hz("H2", today, e.day(1, 10)), hz("H3", today.AddDate(0, 0, -2), e.day(0, 10)), hz("H4", today.AddDate(0, 0, -1), nil),
		hz("H5", today.AddDate(0, 0, 10), nil))
	c.json("/api/dash/dept?dept=emergency", &d)
	f := d.card(t, "rectification")
	if f.Missing != "" || len(f.Rows) != 1 {
		t.Fatalf("rectification: %+v", f)
	}
	want := map[string]float64{"hazards_due": 3, "rectified_on_time_pct": 33.3, "still_open": 1}
	for k, v := range want {
		if got, _ := f.Rows[0][k].(float64); got != v {
			t.Errorf("%s = %v, want %v", k, f.Rows[0][k], v)
		}
	}
}
