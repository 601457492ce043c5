package dashboards

import (
	"net/http"

	"citybrain/internal/auth"
)

// Department home pages (本部门, GET /api/dash/dept): each department's
// own data on one page — the water authority its rain, pipe sensors,
// waterlogging points and rainstorm / waterlogging / lifeline warnings;
// the police their crowds and cases; emergency management its incidents,
// plans and drills; transport, city management and planning theirs. A
// department user sees their own department's page (and lands on it); a
// leader, an analyst or an admin chooses any (?dept=water). Every card is
// read through the user's scope like the other pages, so a card a scope
// does not cover says 无权查看 rather than showing someone else's rows.
//
// A card is one query and a kind the page knows how to draw: "figures"
// (one row, each column a figure), "daily" (day, n: a line over the time
// filter), "bar" (label, n) or "table". Queries read {0}, {1} … (the
// tables, under the user's scope) and, when Range is set, the time
// filter as two parameters (from, to).

type deptCard struct {
	ID     string
	Zh, En string
	Kind   string // figures, daily, bar, table
	Span   string // span3 … span12
	SQL    string
	Tables []string
	Range  bool
}

// dailyCard counts a table's rows per day of col over the time filter.
func dailyCard(id, zh, en, table, col string) deptCard {
	return deptCard{ID: id, Zh: zh, En: en, Kind: "daily", Span: "span6", Range: true, Tables: []string{table},
		SQL: `SELECT CAST(` + col + ` AS DATE) AS day, count(*) AS n FROM {0}
			WHERE ` + col + ` >= CAST(? AS TIMESTAMPTZ) AND ` + col + ` < CAST(? AS TIMESTAMPTZ) GROUP BY 1 ORDER BY 1`}
}

// barCard counts a table's rows per value of label over the time filter (the ten largest).
func barCard(id, zh, en, table, col, label string) deptCard {
	return deptCard{ID: id, Zh: zh, En: en, Kind: "bar", Span: "span6", Range: true, Tables: []string{table},
		SQL: `SELECT coalesce(` + label + `, '') AS label, count(*) AS n FROM {0}
			WHERE ` + col + ` >= CAST(? AS TIMESTAMPTZ) AND ` + col + ` < CAST(? AS TIMESTAMPTZ) GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10`}
}

// sitesCard lists the construction sites (city management's and planning's).
var sitesCard = deptCard{ID: "sites", Zh: "在施工地", En: "Construction sites", Kind: "table", Span: "span12",
	SQL: `SELECT name, contractor, status, started_on, planned_end_on, street_code FROM {0}
		QUALIFY row_number() OVER (PARTITION BY id ORDER BY updated_at DESC) = 1 ORDER BY started_on DESC NULLS LAST LIMIT 15`,
	Tables: []string{"raw.construction_sites"}}

const activeWarnings = `(SELECT * FROM {0} QUALIFY row_number() OVER (PARTITION BY warning_id ORDER BY transition_at DESC) = 1) w WHERE state <> 'cleared'`

// latestReading is each sensor's newest reading in the water telemetry.
const latestReading = `(SELECT * FROM {1} QUALIFY row_number() OVER (PARTITION BY sensor_id ORDER BY observed_at DESC) = 1)`

var deptHomes = map[string][]deptCard{
	"water": {
		{ID: "water_warnings", Zh: "当前预警（暴雨、内涝、生命线）", En: "Active warnings (rainstorm, waterlogging, lifeline)", Kind: "figures", Span: "span12",
			SQL: `SELECT count(*) FILTER (WHERE kind = 'rainstorm') AS rainstorm, count(*) FILTER (WHERE kind = 'waterlogging') AS waterlogging,
				count(*) FILTER (WHERE kind = 'lifeline') AS lifeline, count(*) FILTER (WHERE level = 'red') AS red FROM ` + activeWarnings,
			Tables: []string{"marts.warnings"}},
		{ID: "rain_daily", Zh: "降雨量（毫米/日）", En: "Rain (mm per day)", Kind: "daily", Span: "span6", Range: true,
			SQL: `SELECT CAST(observed_at AS DATE) AS day, round(sum(rain_mm), 1) AS n FROM {0}
				WHERE observed_at >= CAST(? AS TIMESTAMPTZ) AND observed_at < CAST(? AS TIMESTAMPTZ) GROUP BY 1 ORDER BY 1`,
			Tables: []string{"raw.weather"}},
		{ID: "waterlogging_points", Zh: "积水点（最新水深）", En: "Waterlogging points (latest depth)", Kind: "table", Span: "span6",
			SQL: `SELECT p.name, p.kind, p.street_code, r.value AS depth_m, p.warn_depth_m, r.observed_at
				FROM (SELECT * FROM {0} QUALIFY row_number() OVER (PARTITION BY id ORDER BY updated_at DESC) = 1) p
				LEFT JOIN ` + latestReading + ` r ON r.sensor_id = p.sensor_id
				ORDER BY r.value / nullif(p.warn_depth_m, 0) DESC NULLS LAST, p.name LIMIT 15`,
			Tables: []string{"raw.waterlogging_points", "raw.water_telemetry"}},
		{ID: "pipe_sensors", Zh: "管网传感器（报警在前）", En: "Pipe sensors (alarms first)", Kind: "table", Span: "span12",
			SQL: `SELECT sensor_id, kind, site_kind, value, unit, alarm, street_code, observed_at FROM {0} WHERE kind <> 'water_level'
				QUALIFY row_number() OVER (PARTITION BY sensor_id ORDER BY observed_at DESC) = 1 ORDER BY alarm DESC, observed_at DESC LIMIT 15`,
			Tables: []string{"raw.water_telemetry"}},
	},
	"police": {
		{ID: "crowd_warnings", Zh: "当前大客流预警", En: "Active crowd warnings", Kind: "figures", Span: "span12",
			SQL: `SELECT count(*) FILTER (WHERE level = 'red') AS red, count(*) FILTER (WHERE level = 'orange') AS orange,
				count(*) FILTER (WHERE level = 'yellow') AS yellow, count(*) FILTER (WHERE level = 'blue') AS blue FROM ` + activeWarnings + ` AND kind = 'crowd'`,
			Tables: []string{"marts.warnings"}},
		dailyCard("cases_daily", "警情（起/日）", "Police cases per day", "raw.police_cases", "occurred_at"),
		barCard("cases_by_category", "警情类别", "Cases by category", "raw.police_cases", "occurred_at", "category"),
		{ID: "venue_counts", Zh: "重点场所人数（最新）", En: "People at venues (latest count)", Kind: "table", Span: "span12",
			SQL: `SELECT v.name_zh, v.name_en, c.people, v.capacity_people, round(100.0 * c.people / nullif(v.capacity_people, 0), 1) AS pct_capacity, c.observed_at
				FROM (SELECT * FROM {0} WHERE direction = 'total' QUALIFY row_number() OVER (PARTITION BY site_id ORDER BY observed_at DESC) = 1) c
				JOIN (SELECT * FROM {1} QUALIFY row_number() OVER (PARTITION BY venue_id ORDER BY updated_at DESC) = 1) v ON v.venue_id = c.site_id
				ORDER BY pct_capacity DESC NULLS LAST LIMIT 15`,
			Tables: []string{"raw.crowd_counts", "raw.venues"}},
	},
	"emergency": {
		{ID: "emergency_figures", Zh: "应急概况", En: "At a glance", Kind: "figures", Span: "span12", Range: true,
			SQL: `SELECT (SELECT count(*) FROM {0} WHERE received_at >= CAST(? AS TIMESTAMPTZ) AND received_at < CAST(? AS TIMESTAMPTZ)) AS incidents,
				(SELECT count(DISTINCT plan_id) FROM {1}) AS plans, (SELECT count(DISTINCT plan_id) FILTER (WHERE digitized) FROM {1}) AS digitized_plans,
				(SELECT count(*) FROM {2} WHERE held_at >= CAST(? AS TIMESTAMPTZ) AND held_at < CAST(? AS TIMESTAMPTZ)) AS drills`,
			Tables: []string{"raw.incidents", "raw.emergency_plans", "raw.drills"}},
		dailyCard("incidents_daily", "应急警情（起/日）", "Incidents per day", "raw.incidents", "received_at"),
		barCard("incidents_by_category", "警情类别", "Incidents by category", "raw.incidents", "received_at", "category"),
		{ID: "plans", Zh: "应急预案（最近修订）", En: "Emergency plans (latest revisions)", Kind: "table", Span: "span6",
			SQL: `SELECT title_zh, title_en, owner_name, revision, revised_at, digitized
				FROM {0} QUALIFY row_number() OVER (PARTITION BY plan_id ORDER BY revision DESC) = 1 ORDER BY revised_at DESC LIMIT 12`,
			Tables: []string{"raw.emergency_plans"}},
		{ID: "drills", Zh: "应急演练（最近）", En: "Drills (latest)", Kind: "table", Span: "span6",
			SQL:    `SELECT held_at, kind, owner_kind, participants, street_code FROM {0} ORDER BY held_at DESC LIMIT 12`,
			Tables: []string{"raw.drills"}},
		// The response service's timeline (marts.responses, issue 24): its
		// KPIs over the range, and the latest events.
		{ID: "response_kpis", Zh: "应急响应（预案启动与处置）", En: "Responses (plans activated, tasks handled)", Kind: "figures", Span: "span12", Range: true,
			SQL: `WITH t AS (SELECT task_id, min("at") FILTER (WHERE event = 'notified') AS notified_at, min("at") FILTER (WHERE event = 'acknowledged') AS ack_at
					FROM {0} WHERE task_id IS NOT NULL AND opened_at >= CAST(? AS TIMESTAMPTZ) AND opened_at < CAST(? AS TIMESTAMPTZ) GROUP BY task_id)
				SELECT (SELECT count(DISTINCT response_id) FROM {0} WHERE event = 'activated' AND "at" >= CAST(? AS TIMESTAMPTZ) AND "at" < CAST(? AS TIMESTAMPTZ)) AS responses,
					count(*) AS response_tasks,
					round(100.0 * count(*) FILTER (WHERE ack_at <= notified_at + INTERVAL 5 MINUTE) / nullif(count(*), 0), 1) AS acked_within_5min_pct,
					round(median(epoch(ack_at - notified_at)) / 60.0, 1) AS median_ack_min,
					(SELECT count(*) FROM {0} WHERE event = 'escalated' AND "at" >= CAST(? AS TIMESTAMPTZ) AND "at" < CAST(? AS TIMESTAMPTZ)) AS escalations,
					(SELECT count(*) FROM {0} WHERE event = 'failed' AND "at" >= CAST(? AS TIMESTAMPTZ) AND "at" < CAST(? AS TIMESTAMPTZ)) AS failed_deliveries
				FROM t`,
			Tables: []string{"marts.responses"}},
		// Risk-based supervision (issue 25): the latest published plan's
		// progress by street and by inspector (a planned unit counts done
		// once it was inspected that month), and rectification over the range
		// (dates in Beijing time: + 8 h).
		{ID: "inspection_progress", Zh: "双随机监督检查进度（最新计划月，按街道）", En: "Inspection plan progress (latest month, by street)", Kind: "table", Span: "span12",
			SQL: `WITH p AS (SELECT * FROM {0} WHERE month = (SELECT max(month) FROM {0})),
				b AS (SELECT CAST(strftime(max(month), '%Y-%m-%d') || ' 00:00:00+08' AS TIMESTAMPTZ) AS lo FROM p),
				i AS (SELECT i.enterprise_id, count(*) AS n, sum(coalesce(i.hazards_found, 0)) AS hz FROM {1} i, b
					WHERE i.inspected_at >= b.lo AND i.inspected_at < b.lo + INTERVAL 1 MONTH GROUP BY 1)
				SELECT p.street_code, strftime(max(p.month), '%Y-%m') AS plan_month, count(*) AS planned, count(i.enterprise_id) AS done,
					round(100.0 * count(i.enterprise_id) / count(*), 1) AS done_pct, count(DISTINCT p.inspector_id) AS inspectors,
					round(100.0 * sum(i.hz) / nullif(sum(i.n), 0), 1) AS hazards_per_100
				FROM p LEFT JOIN i ON i.enterprise_id = p.enterprise_id GROUP BY 1 ORDER BY 1`,
			Tables: []string{"marts.inspection_plans", "raw.inspections"}},
		{ID: "inspector_progress", Zh: "检查人员进度（最新计划月，落后在前）", En: "Inspectors' progress (latest month, behind first)", Kind: "table", Span: "span12",
			SQL: `WITH p AS (SELECT * FROM {0} WHERE month = (SELECT max(month) FROM {0}) AND inspector_id IS NOT NULL),
				b AS (SELECT CAST(strftime(max(month), '%Y-%m-%d') || ' 00:00:00+08' AS TIMESTAMPTZ) AS lo FROM p),
				i AS (SELECT DISTINCT i.enterprise_id FROM {1} i, b WHERE i.inspected_at >= b.lo AND i.inspected_at < b.lo + INTERVAL 1 MONTH)
				SELECT p.inspector_name, p.inspector_id, any_value(p.street_code) AS street_code, count(*) AS planned, count(i.enterprise_id) AS done,
					count(*) FILTER (WHERE i.enterprise_id IS NULL AND p.day < current_date) AS overdue_visits
				FROM p LEFT JOIN i ON i.enterprise_id = p.enterprise_id GROUP BY 1, 2
				ORDER BY overdue_visits DESC, done * 1.0 / count(*), 2 LIMIT 20`,
			Tables: []string{"marts.inspection_plans", "raw.inspections"}},
		{ID: "rectification", Zh: "隐患发现与整改（所选时段）", En: "Hazards found and rectified (range)", Kind: "figures", Span: "span12", Range: true,
			SQL: `WITH h AS (SELECT * FROM {0} QUALIFY row_number() OVER (PARTITION BY id ORDER BY (rectified_at IS NOT NULL) DESC, rectified_at DESC) = 1)
				SELECT (SELECT count(*) FROM {1} WHERE inspected_at >= CAST(? AS TIMESTAMPTZ) AND inspected_at < CAST(? AS TIMESTAMPTZ)) AS inspections,
					(SELECT round(100.0 * sum(coalesce(hazards_found, 0)) / nullif(count(*), 0), 1) FROM {1}
						WHERE inspected_at >= CAST(? AS TIMESTAMPTZ) AND inspected_at < CAST(? AS TIMESTAMPTZ)) AS hazards_per_100,
					count(*) AS hazards_due,
					round(100.0 * count(*) FILTER (WHERE rectified_at IS NOT NULL AND CAST(make_timestamp(epoch_us(rectified_at) + 28800000000) AS DATE) <= deadline) / nullif(count(*), 0), 1) AS rectified_on_time_pct,
					count(*) FILTER (WHERE rectified_at IS NULL) AS still_open
				FROM h WHERE deadline >= CAST(make_timestamp(epoch_us(CAST(? AS TIMESTAMPTZ)) + 28800000000) AS DATE) AND deadline < CAST(make_timestamp(epoch_us(CAST(? AS TIMESTAMPTZ)) + 28800000000) AS DATE)`,
			Tables: []string{"raw.hazards", "raw.inspections"}},
		{ID: "response_timeline", Zh: "应急响应时间线（最新）", En: "Response timeline (latest events)", Kind: "table", Span: "span12",
			SQL: `SELECT "at", event, subject_name_zh, plan_id, plan_level, person_name, channel, detail_zh
				FROM {0} WHERE event NOT IN ('notified', 'delivered') ORDER BY seq DESC LIMIT 20`,
			Tables: []string{"marts.responses"}},
	},
	"traffic": {
		{ID: "traffic_figures", Zh: "交通概况", En: "At a glance", Kind: "figures", Span: "span12", Range: true,
			SQL: `SELECT count(*) AS collisions, coalesce(sum(injured), 0) AS injured, coalesce(sum(killed), 0) AS killed FROM {0}
				WHERE occurred_at >= CAST(? AS TIMESTAMPTZ) AND occurred_at < CAST(? AS TIMESTAMPTZ)`,
			Tables: []string{"raw.traffic_collisions"}},
		dailyCard("collisions_daily", "交通事故（起/日）", "Collisions per day", "raw.traffic_collisions", "occurred_at"),
		{ID: "slow_roads", Zh: "最拥堵路段（最新）", En: "Slowest roads (latest)", Kind: "table", Span: "span6",
			SQL: `SELECT road_name, speed_kmh, free_flow_kmh, round(100.0 * speed_kmh / nullif(free_flow_kmh, 0), 1) AS pct_free_flow, observed_at
				FROM {0} QUALIFY row_number() OVER (PARTITION BY segment_id ORDER BY observed_at DESC) = 1 ORDER BY pct_free_flow NULLS LAST LIMIT 12`,
			Tables: []string{"raw.traffic_speeds"}},
	},
	"city_management": {
		dailyCard("events_daily", "12345 诉求（件/日）", "12345 requests per day", "raw.city_events", "requested_at"),
		barCard("events_by_category", "12345 诉求类别", "12345 categories", "raw.city_events", "requested_at", "category"),
		sitesCard,
	},
	"planning": {
		dailyCard("permits_daily", "建设工程规划许可（件/日）", "Building permits per day", "raw.building_permits", "issued_at"),
		barCard("permits_by_type", "许可类型", "Permits by type", "raw.building_permits", "issued_at", "permit_type"),
		sitesCard,
	},
}

// deptPage is GET /api/dash/dept[?dept=name]: the department's cards.
func (s *Server) deptPage(w http.ResponseWriter, r *http.Request) {
	f, err := s.parseFilters(r)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err.Error())
		return
	}
	u := userOf(r)
	name := r.URL.Query().Get("dept")
	if u.Role == auth.RoleDepartment {
		if name != "" && name != u.Department {
			writeErr(w, http.StatusForbidden, "只能查看本部门的主页 / a department sees its own home page only")
			return
		}
		name = u.Department
	}
	var deps []map[string]string
	var dep *auth.Department
	for _, d := range s.d.Auth.Config().Departments {
		if u.Role == auth.RoleDepartment && d.Name != u.Department {
			continue
		}
		en := d.NameEn
		if en == "" {
			en = d.Name
		}
		deps = append(deps, map[string]string{"name": d.Name, "name_zh": d.NameZh, "name_en": en})
		if name == "" && deptHomes[d.Name] != nil {
			name = d.Name
		}
		if d.Name == name {
			dep = &d
		}
	}
	if dep == nil {
		writeErr(w, http.StatusNotFound, "没有该部门 / no such department: "+name)
		return
	}
	s.cached(w, r, f.key+"&dept="+name, func(x *q) (any, error) {
		var cards []map[string]any
		for _, c := range deptHomes[name] {
			var args []any
			if c.Range {
				for range countRange(c.SQL) {
					args = append(args, f.fromTS, f.toTS)
				}
			}
			cards = append(cards, map[string]any{"id": c.ID, "title_zh": c.Zh, "title_en": c.En, "kind": c.Kind, "span": c.Span,
				"section": x.rows(c.SQL, c.Tables, args...)})
		}
		return map[string]any{"department": name, "departments": deps, "cards": cards}, nil
	})
}

// countRange is how many time ranges (pairs of ?) a card's query takes.
func countRange(sql string) []struct{} {
	n := 0
	for _, r := range sql {
		if r == '?' {
			n++
		}
	}
	return make([]struct{}, n/2)
}
