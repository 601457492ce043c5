package dashboards

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"citybrain/internal/auth"
	"citybrain/internal/geo"
	"citybrain/schemas"
	"citybrain/warehouse"
)

// Section is one block of a page: rows, or why there are none
// ("no_data": the table is not in the lake yet; "no_access": the user's
// department may not read it; "error": the query failed, with Detail).
type Section struct {
	Rows    []map[string]any `json:"rows,omitempty"`
	Missing string           `json:"missing,omitempty"`
	Detail  string           `json:"detail,omitempty"`
	// Totals, for a layer filtered by level, counts every row per level
	// before that filter ("none": no level), so the map can say "120 of 24,000".
	Totals map[string]int64 `json:"totals,omitempty"`
	// Columns is the rows' column order (a row is an object: its keys come
	// sorted).
	Columns []string `json:"columns,omitempty"`
}

// filters are the page-wide filters of a request.
type filters struct {
	from, to     time.Time // [from, to) in Asia/Shanghai
	street       string
	community    string
	industry     string
	levels       []string // risk levels to show (map layers); empty: all
	key          string   // canonical form for cache keys
	fromS, toS   string
	fromTS, toTS string
}

// riskLevels are the values of the levels filter ("none": no level computed).
var riskLevels = []string{"red", "orange", "yellow", "blue", "none"}

var (
	adcodeRE = regexp.MustCompile(`^[0-9]{9,12}$`)
	idRE     = regexp.MustCompile(`^[\p{L}\p{N}_.:-]{1,128}$`)
	shanghai = mustZone("Asia/Shanghai")
)

func mustZone(name string) *time.Location {
	l, err := time.LoadLocation(name)
	if err != nil {
		return time.FixedZone("CST", 8*3600)
	}
	return l
}

// parseFilters reads from/to (YYYY-MM-DD, to inclusive), street, community
// and industry; a bad value is a 400 with a zh/en message.
func (s *Server) parseFilters(r *http.Request) (filters, error) {
	q := r.URL.Query()
	var f filters
	today := time.Date(s.d.Now().In(shanghai).Year(), s.d.Now().In(shanghai).Month(), s.d.Now().In(shanghai).Day(), 0, 0, 0, 0, shanghai)
	f.to = today.AddDate(0, 0, 1)
	f.from = today.AddDate(0, 0, -s.cfg.DefaultDays+1)
	if v := q.Get("from"); v != "" {
		t, err := time.ParseInLocation(time.DateOnly, v, shanghai)
		if err != nil {
			return f, fmt.Errorf("from %q: 日期格式应为 YYYY-MM-DD / want YYYY-MM-DD", v)
		}
		f.from = t
	}
	if v := q.Get("to"); v != "" {
		t, err := time.ParseInLocation(time.DateOnly, v, shanghai)
		if err != nil {
			return f, fmt.Errorf("to %q: 日期格式应为 YYYY-MM-DD / want YYYY-MM-DD", v)
		}
		f.to = t.AddDate(0, 0, 1)
	}
	if !f.from.Before(f.to) {
		return f, errors.New("from 晚于 to / from is after to")
	}
	if f.to.Sub(f.from) > 3700*24*time.Hour {
		return f, errors.New("时间范围过大（最多约 10 年）/ time range too long (10 years at most)")
	}
	f.street, f.community, f.industry = q.Get("street"), q.Get("community"), q.Get("industry")
	if f.street != "" && !adcodeRE.MatchString(f.street) {
		return f, fmt.Errorf("street %q: 应为街道区划代码，如 110102001 / want a street adcode such as 110102001", f.street)
	}
	if f.community != "" && !idRE.MatchString(f.community) {
		return f, fmt.Errorf("community %q: 社区代码无效 / not a community code", f.community)
	}
	if len(f.industry) > 200 {
		return f, errors.New("industry 过长 / industry too long")
	}
	if v := q.Get("levels"); v != "" {
		for _, l := range strings.Split(v, ",") {
			if !slices.Contains(riskLevels, l) {
				return f, fmt.Errorf("levels %q: 等级应为 red、orange、yellow、blue 或 none（逗号分隔）/ want red, orange, yellow, blue or none, comma-separated", v)
			}
			if !slices.Contains(f.levels, l) {
				f.levels = append(f.levels, l)
			}
		}
		slices.Sort(f.levels)
	}
	f.fromS, f.toS = f.from.Format(time.DateOnly), f.to.AddDate(0, 0, -1).Format(time.DateOnly)
	f.fromTS, f.toTS = f.from.Format("2006-01-02 15:04:05-07:00"), f.to.Format("2006-01-02 15:04:05-07:00")
	f.key = url.Values{"from": {f.fromS}, "to": {f.toS}, "street": {f.street}, "community": {f.community}, "industry": {f.industry},
		"levels": {strings.Join(f.levels, ",")}}.Encode()
	return f, nil
}

// scopeKey groups users who see the same answers.
func scopeKey(u auth.User) string {
	switch u.Role {
	case auth.RoleAdmin:
		return "admin"
	case auth.RoleDepartment:
		return "dept:" + u.Department
	}
	return "all"
}

// q is one answer being computed: the tables it read (for invalidation)
// and the user's scope.
type q struct {
	s      *Server
	ctx    context.Context
	scope  auth.Scope
	tables []string
}

func (s *Server) newQ(ctx context.Context, u auth.User) *q {
	return &q{s: s, ctx: ctx, scope: s.d.Auth.ScopeOf(u)}
}

// from returns the SQL to read a table under the user's scope, or a
// Section saying why it cannot be read.
func (x *q) from(table string) (string, *Section) {
	x.tables = append(x.tables, table)
	filter, ok := x.scope.Allows(table)
	if !ok {
		return "", &Section{Missing: "no_access"}
	}
	if _, err := x.s.d.Lake.Load(x.ctx, table); err != nil {
		if errors.Is(err, warehouse.ErrNoTable) {
			return "", &Section{Missing: "no_data"}
		}
		return "", &Section{Missing: "error", Detail: err.Error()}
	}
	if filter != "" {
		return "(SELECT * FROM " + table + " WHERE " + filter + ")", nil
	}
	return table, nil
}

// has reports whether a table can be read (recording it as read).
func (x *q) has(table string) bool { _, sec := x.from(table); return sec == nil }

// rows runs a query over the given tables ({0}, {1} … in sql stand for
// them) and returns a section.
func (x *q) rows(sql string, tables []string, args ...any) Section {
	srcs := make([]any, len(tables))
	for i, t := range tables {
		src, sec := x.from(t)
		if sec != nil {
			return *sec
		}
		srcs[i] = src
	}
	for i := range srcs {
		sql = strings.ReplaceAll(sql, fmt.Sprintf("{%d}", i), srcs[i].(string))
	}
	ctx, cancel := context.WithTimeout(x.ctx, 30*time.Second)
	defer cancel()
	rs, err := x.s.d.Engine.Query(ctx, sql, args...)
	if err != nil {
		x.s.d.Log.Warn("dashboard query", "err", err)
		return Section{Missing: "error", Detail: err.Error()}
	}
	defer rs.Close()
	cols, _ := rs.Columns()
	out := Section{Rows: []map[string]any{}, Columns: cols}
	for rs.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rs.Scan(ptrs...); err != nil {
			return Section{Missing: "error", Detail: err.Error()}
		}
		m := make(map[string]any, len(cols))
		for i, c := range cols {
			m[c] = jsonValue(vals[i])
		}
		out.Rows = append(out.Rows, m)
	}
	if err := rs.Err(); err != nil {
		return Section{Missing: "error", Detail: err.Error()}
	}
	return out
}

func jsonValue(v any) any {
	switch t := v.(type) {
	case time.Time:
		return t.In(shanghai).Format(time.RFC3339)
	case []byte:
		return string(t)
	case *big.Int:
		if t.IsInt64() {
			return t.Int64()
		}
		return t.String()
	case float64:
		if t != t { // NaN is not JSON
			return nil
		}
	}
	return v
}

// cached serves a cached JSON answer computed by fn.
//
// extra, when given, is JSON members spliced into the answer object
// (values not to be cached).
func (s *Server) cached(w http.ResponseWriter, r *http.Request, key string, fn func(x *q) (any, error), extra ...string) {
	u := userOf(r)
	full := r.URL.Path + "?" + key + "#" + scopeKey(u)
	body, err := s.cache.get(full, func() ([]byte, []string, error) {
		x := s.newQ(context.WithoutCancel(r.Context()), u)
		v, err := fn(x)
		if err != nil {
			return nil, nil, err
		}
		b, err := json.Marshal(v)
		return b, x.tables, err
	})
	if err != nil {
		writeErr(w, http.StatusBadRequest, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if len(extra) > 0 && len(body) > 1 && body[len(body)-1] == '}' {
		w.Write(body[:len(body)-1])
		for _, x := range extra {
			w.Write([]byte(x))
		}
		w.Write([]byte("}"))
		return
	}
	w.Write(body)
}

// streetNames: the district's 15 streets from the embedded geography.
func streetNames() []map[string]any {
	st, err := geo.LoadStreets()
	if err != nil {
		return nil
	}
	var out []map[string]any
	for _, s := range st.All() {
		out = append(out, map[string]any{"adcode": s.Adcode, "name_zh": s.NameZH, "name_en": s.NameEN, "area_km2": s.AreaKM2})
	}
	return out
}

func (s *Server) config(w http.ResponseWriter, r *http.Request) {
	s.cached(w, r, "", func(x *q) (any, error) {
		inds := x.rows(`SELECT industry, count(*) AS n FROM {0} WHERE industry IS NOT NULL AND industry <> '' GROUP BY 1 ORDER BY 2 DESC, 1`, []string{"raw.enterprises"})
		return map[string]any{"streets": streetNames(), "industries": inds, "default_days": s.cfg.DefaultDays,
			"today": s.d.Now().In(shanghai).Format(time.DateOnly), "tables": s.tableTitles(x)}, nil
	}, fmt.Sprintf(`,"sql":%v`, s.sqlAvailable()))
}

// tableTitles names the tables the user sees in both languages, for the
// pages to show "12345 热线与网格事件" where a path or a source names
// raw.city_events: the canonical schemas' docs, and for the models'
// tables their Iceberg comment ("中文 / English").
func (s *Server) tableTitles(x *q) map[string]schemas.Text {
	out := map[string]schemas.Text{}
	if reg, err := schemas.Builtin(); err == nil {
		for _, n := range reg.Names() {
			if sc, err := reg.Get(n); err == nil && x.scope.Sees(sc.Table) {
				out[sc.Table] = sc.Doc
			}
		}
	}
	infos, err := s.d.Lake.Tables(x.ctx)
	if err != nil {
		return out
	}
	for _, ti := range infos {
		if _, ok := out[ti.Name]; ok || !x.scope.Sees(ti.Name) {
			continue
		}
		if t, err := s.d.Lake.Load(x.ctx, ti.Name); err == nil && t.Properties()["comment"] != "" {
			out[ti.Name] = schemas.SplitBilingual(t.Properties()["comment"])
		}
	}
	return out
}

// streetCond is " AND <col> = ?" when a street is chosen.
func (f filters) streetCond(col string, args *[]any) string {
	if f.street == "" {
		return ""
	}
	*args = append(*args, f.street)
	return " AND " + col + " = ?"
}

func (f filters) industryCond(col string, args *[]any) string {
	if f.industry == "" {
		return ""
	}
	*args = append(*args, f.industry)
	return " AND " + col + " = ?"
}

// latestWarnings is the last transition of each warning.
const latestWarnings = `(SELECT * FROM {0} QUALIFY row_number() OVER (PARTITION BY warning_id ORDER BY transition_at DESC) = 1)`

func (s *Server) cockpit(w http.ResponseWriter, r *http.Request) {
	f, err := s.parseFilters(r)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err.Error())
		return
	}
	u := userOf(r)
	full := "/api/dash/cockpit?" + f.key + "#" + scopeKey(u)
	lake, err := s.cache.get(full, func() ([]byte, []string, error) {
		x := s.newQ(context.WithoutCancel(r.Context()), u)
		v := s.cockpitData(x, f)
		b, err := json.Marshal(v)
		return b, x.tables, err
	})
	if err != nil {
		writeErr(w, http.StatusInternalServerError, err.Error())
		return
	}
	hs := s.healthData(r.Context())
	sc := s.d.Auth.ScopeOf(u)
	_, sources, _ := hs.forScope(sc)
	// The lake part is cached (recomputed on commit: cache.go), the broker's status for
	// dashboards.status_max_age, the paths' freshness (in memory) is read
	// now: spliced, not re-encoded, and sent in one write.
	paths, wf := jsonOf(scopePaths(sc, s.paths(hs.list))), jsonOf(s.warningsFreshness())
	body := make([]byte, 0, len(lake)+len(sources)+len(paths)+len(wf)+64)
	body = append(body, `{"lake":`...)
	body = append(body, lake...)
	body = append(body, `,"freshness":`...)
	body = append(body, sources...)
	body = append(body, `,"paths":`...)
	body = append(body, paths...)
	body = append(body, `,"warnings_freshness":`...)
	body = append(body, wf...)
	body = append(body, "}\n"...)
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}

func (s *Server) cockpitData(x *q, f filters) map[string]any {
	out := map[string]any{"filters": map[string]string{"from": f.fromS, "to": f.toS, "street": f.street, "industry": f.industry}}
	out["kpis"] = x.rows(`SELECT target_no, target_zh, target_en, goal, unit, unit_zh, unit_en, figure, figure_year_before, better, status, trend, as_of_date FROM {0} ORDER BY target_no`, []string{"marts.plan_kpis"})

	var a []any
	cond := f.streetCond("street_code", &a)
	out["warnings_by_level"] = x.rows(`SELECT level, count(*) AS n FROM `+latestWarnings+` w WHERE state <> 'cleared'`+cond+` GROUP BY level`, []string{"marts.warnings"}, a...)
	// The same by event time: the page counts as live (实时) only those
	// not older than warnings_freshness.live_after, which changes without
	// a commit.
	out["active_warnings_by_time"] = x.rows(`SELECT level, event_time, count(*) AS n FROM `+latestWarnings+` w WHERE state <> 'cleared'`+cond+` GROUP BY 1, 2 ORDER BY 2 DESC, 1`, []string{"marts.warnings"}, a...)

	a = nil
	cond = f.streetCond("street_code", &a) + f.industryCond("industry", &a)
	out["enterprises_by_level_street"] = x.rows(`SELECT street_code, level, count(*) AS n FROM {0} WHERE true`+cond+` GROUP BY 1, 2 ORDER BY 1, 2`, []string{"marts.enterprise_risk"}, a...)

	trend := func(table, col, extra string) Section {
		args := []any{f.fromTS, f.toTS}
		c := f.streetCond("street_code", &args)
		return x.rows(`SELECT CAST(`+col+` AS DATE) AS day, count(*) AS n FROM {0} WHERE `+col+` >= CAST(? AS TIMESTAMPTZ) AND `+col+` < CAST(? AS TIMESTAMPTZ)`+extra+c+` GROUP BY 1 ORDER BY 1`, []string{table}, args...)
	}
	out["trend_incidents"] = trend("raw.incidents", "received_at", "")
	out["trend_events"] = trend("raw.city_events", "requested_at", "")
	// Warnings by the time of the data that raised them, not by when the
	// engine got to it (a backlog evaluated in one day would be drawn there).
	out["trend_warnings"] = trend("marts.warnings", "event_time", " AND state = 'raised'")

	a = []any{f.fromTS, f.toTS}
	cond = f.streetCond("street_code", &a)
	out["events_by_category"] = x.rows(`SELECT coalesce(category, '') AS category, count(*) AS n FROM {0} WHERE requested_at >= CAST(? AS TIMESTAMPTZ) AND requested_at < CAST(? AS TIMESTAMPTZ)`+cond+` GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10`, []string{"raw.city_events"}, a...)
	out["recent_events"] = x.rows(`SELECT id, requested_at, status, category, description, address, street_code FROM {0} WHERE requested_at >= CAST(? AS TIMESTAMPTZ) AND requested_at < CAST(? AS TIMESTAMPTZ)`+cond+` ORDER BY requested_at DESC LIMIT 8`, []string{"raw.city_events"}, a...)
	return out
}

func (s *Server) activeWarnings(w http.ResponseWriter, r *http.Request) {
	f, err := s.parseFilters(r)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err.Error())
		return
	}
	s.cached(w, r, f.key, func(x *q) (any, error) {
		var a []any
		cond := f.streetCond("street_code", &a)
		return map[string]any{"warnings": x.rows(`SELECT * FROM `+latestWarnings+` w WHERE state <> 'cleared'`+cond+`
			ORDER BY CASE level WHEN 'red' THEN 0 WHEN 'orange' THEN 1 WHEN 'yellow' THEN 2 ELSE 3 END, event_time DESC, transition_at DESC LIMIT 200`, []string{"marts.warnings"}, a...)}, nil
	})
}

// The map layers: each row has id, name, lon, lat and the layer's own fields.
var layers = map[string]func(s *Server, x *q, f filters) Section{
	"crowd": func(s *Server, x *q, f filters) Section {
		sup := x.scope.Suppress
		return x.rows(`WITH last AS (SELECT max(window_start) AS t FROM {0})
			SELECT g.grid_cell_id AS id, g.grid_cell_id AS name, g.center_longitude AS lon, g.center_latitude AS lat, g.street_code,
			       CASE WHEN m.people_count < ? THEN NULL ELSE m.people_count END AS people, g.area_m2, m.window_start
			FROM {0} m JOIN {1} g USING (grid_cell_id), last WHERE m.window_start = last.t`, []string{"raw.mobile_signal", "raw.grid_cells"}, sup)
	},
	"venues": func(s *Server, x *q, f filters) Section {
		if x.has("marts.warnings") {
			return x.rows(`SELECT v.venue_id AS id, v.name_zh, v.name_en, v.longitude AS lon, v.latitude AS lat, v.kind, v.capacity_people, v.street_code,
				w.level AS warning_level, w.state AS warning_state
				FROM {0} v LEFT JOIN (SELECT * FROM `+strings.ReplaceAll(latestWarnings, "{0}", "{1}")+` x WHERE state <> 'cleared' AND subject_type = 'venue'
				QUALIFY row_number() OVER (PARTITION BY subject_id ORDER BY CASE level WHEN 'red' THEN 0 WHEN 'orange' THEN 1 WHEN 'yellow' THEN 2 ELSE 3 END) = 1) w
				ON w.subject_id = v.venue_id WHERE v.longitude IS NOT NULL`, []string{"raw.venues", "marts.warnings"})
		}
		return x.rows(`SELECT venue_id AS id, name_zh, name_en, longitude AS lon, latitude AS lat, kind, capacity_people, street_code, NULL AS warning_level
			FROM {0} WHERE longitude IS NOT NULL`, []string{"raw.venues"})
	},
	// Enterprises: the levels filter (the map shows red and orange units
	// by default: 24,000 points would hide the district) and the totals per
	// level under the street and industry filters.
	"enterprises": func(s *Server, x *q, f filters) Section {
		var a []any
		cond := f.streetCond("e.street_code", &a) + f.industryCond("e.industry", &a)
		table, sel := "raw.enterprises", `SELECT e.id, e.name, e.longitude AS lon, e.latitude AS lat, e.industry, e.street_code, NULL AS level FROM {0} e`
		if x.has("marts.enterprise_risk") {
			// No factors here (24,000 rows of text): the details panel reads them from /api/dash/enterprise/{id}.
			table, sel = "marts.enterprise_risk", `SELECT e.enterprise_id AS id, e.enterprise_name AS name, e.longitude AS lon, e.latitude AS lat, e.industry, e.street_code, e.level, e.score
				FROM {0} e`
		}
		totals := x.rows(`SELECT coalesce(`+levelOf(table)+`, 'none') AS level, count(*) AS n FROM {0} e WHERE e.longitude IS NOT NULL`+cond+` GROUP BY 1`, []string{table}, a...)
		if totals.Missing != "" {
			return totals
		}
		lc := ""
		if len(f.levels) > 0 {
			lc = " AND coalesce(" + levelOf(table) + ", 'none') IN (" + strings.TrimSuffix(strings.Repeat("?, ", len(f.levels)), ", ") + ")"
			for _, l := range f.levels {
				a = append(a, l)
			}
		}
		out := x.rows(sel+` WHERE e.longitude IS NOT NULL`+cond+lc, []string{table}, a...)
		out.Totals = map[string]int64{}
		for _, r := range totals.Rows {
			n, _ := toFloat(r["n"])
			out.Totals[fmt.Sprint(r["level"])] = int64(n)
		}
		return out
	},
	"shelters": func(s *Server, x *q, f filters) Section {
		return x.rows(`SELECT id, name, longitude AS lon, latitude AS lat, kind, level, capacity_people, area_m2, certified_on, address, street_code FROM {0} WHERE longitude IS NOT NULL`, []string{"raw.shelters"})
	},
	"warehouses": func(s *Server, x *q, f filters) Section {
		return x.rows(`SELECT id, name, longitude AS lon, latitude AS lat, zone, capacity_people, floor_area_m2, address, street_code FROM {0} WHERE longitude IS NOT NULL`, []string{"raw.supply_warehouses"})
	},
	"fire_stations": func(s *Server, x *q, f filters) Section {
		return x.rows(`SELECT id, name, longitude AS lon, latitude AS lat, kind, staff, address, street_code FROM {0} WHERE longitude IS NOT NULL`, []string{"raw.fire_stations"})
	},
	"waterlogging": func(s *Server, x *q, f filters) Section {
		if x.has("raw.water_telemetry") {
			return x.rows(`SELECT p.id, p.name, p.longitude AS lon, p.latitude AS lat, p.kind, p.warn_depth_m, p.sensor_id, t.value, t.unit, t.alarm, t.observed_at, p.street_code
				FROM {0} p LEFT JOIN (SELECT * FROM {1} QUALIFY row_number() OVER (PARTITION BY sensor_id ORDER BY observed_at DESC) = 1) t ON t.sensor_id = p.sensor_id
				WHERE p.longitude IS NOT NULL QUALIFY row_number() OVER (PARTITION BY p.id ORDER BY p.updated_at DESC) = 1`, []string{"raw.waterlogging_points", "raw.water_telemetry"})
		}
		return x.rows(`SELECT id, name, longitude AS lon, latitude AS lat, kind, warn_depth_m, sensor_id, street_code FROM {0} WHERE longitude IS NOT NULL
			QUALIFY row_number() OVER (PARTITION BY id ORDER BY updated_at DESC) = 1`, []string{"raw.waterlogging_points"})
	},
	"lifeline": func(s *Server, x *q, f filters) Section {
		if x.has("raw.water_telemetry") {
			return x.rows(`SELECT w.sensor_id AS id, w.sensor_id AS name, w.longitude AS lon, w.latitude AS lat, w.kind, w.site_kind, w.normal_min, w.normal_max, t.value, w.unit, t.alarm, t.observed_at, w.street_code
				FROM {0} w LEFT JOIN (SELECT * FROM {1} QUALIFY row_number() OVER (PARTITION BY sensor_id ORDER BY observed_at DESC) = 1) t ON t.sensor_id = w.sensor_id
				WHERE w.longitude IS NOT NULL AND w.kind <> 'water_level' QUALIFY row_number() OVER (PARTITION BY w.sensor_id ORDER BY w.updated_at DESC) = 1`, []string{"raw.water_sensors", "raw.water_telemetry"})
		}
		return x.rows(`SELECT sensor_id AS id, sensor_id AS name, longitude AS lon, latitude AS lat, kind, site_kind, normal_min, normal_max, unit, street_code FROM {0}
			WHERE longitude IS NOT NULL AND kind <> 'water_level' QUALIFY row_number() OVER (PARTITION BY sensor_id ORDER BY updated_at DESC) = 1`, []string{"raw.water_sensors"})
	},
	// Open emergency responses (the response service's marts.responses) at
	// their subject — a venue, grid cell, sensor or collision hot spot, else
	// their street's centre (located = street_centre) — with their plan, level and
	// how many tasks are acknowledged: beside the fire stations, shelters,
	// warehouses and crowd layers, what a leader needs for 辅助决策.
	"responses": func(s *Server, x *q, f filters) Section {
		if !x.has("marts.responses") {
			return Section{Rows: []map[string]any{}}
		}
		// Each subject kind is located by its reference table, when the lake has it.
		tables := []string{"marts.responses"}
		var joins, lon, lat []string
		for _, l := range []struct{ table, kind, id, lon, lat string }{
			{"raw.venues", "venue", "venue_id", "longitude", "latitude"},
			{"raw.grid_cells", "grid_cell", "grid_cell_id", "center_longitude", "center_latitude"},
			{"raw.water_sensors", "sensor", "sensor_id", "longitude", "latitude"},
		} {
			if !x.has(l.table) {
				continue
			}
			n := len(tables)
			tables = append(tables, l.table)
			a := fmt.Sprintf("l%d", n)
			joins = append(joins, fmt.Sprintf(`LEFT JOIN (SELECT * FROM {%d} QUALIFY row_number() OVER (PARTITION BY %s ORDER BY updated_at DESC) = 1) %s
				ON r.subject_type = '%s' AND %s.%s = r.subject_id`, n, l.id, a, l.kind, a, l.id))
			lon, lat = append(lon, a+"."+l.lon), append(lat, a+"."+l.lat)
		}
		// A collision hot spot is named by its cell's corner ("spot:LAT,LON").
		lon = append(lon, `CASE WHEN r.subject_id LIKE 'spot:%' THEN try_cast(split_part(substr(r.subject_id, 6), ',', 2) AS DOUBLE) END`)
		lat = append(lat, `CASE WHEN r.subject_id LIKE 'spot:%' THEN try_cast(split_part(substr(r.subject_id, 6), ',', 1) AS DOUBLE) END`)
		exact := "coalesce(" + strings.Join(lon, ", ") + ")"
		// Without coordinates of its own (a speed segment, a weather
		// station) a response stands at its street's centre, said so.
		if x.has("raw.streets") {
			n := len(tables)
			tables = append(tables, "raw.streets")
			joins = append(joins, fmt.Sprintf(`LEFT JOIN (SELECT * FROM {%d} QUALIFY row_number() OVER (PARTITION BY adcode ORDER BY updated_at DESC) = 1) st
				ON st.adcode = r.street_code`, n))
			lon, lat = append(lon, "st.center_longitude"), append(lat, "st.center_latitude")
		}
		lonX, latX := "coalesce("+strings.Join(lon, ", ")+")", "coalesce("+strings.Join(lat, ", ")+")"
		return x.rows(`WITH r AS (
				SELECT response_id, arg_min(subject_type, seq) AS subject_type, arg_min(subject_id, seq) AS subject_id,
					arg_min(subject_name_zh, seq) AS name_zh, arg_min(street_code, seq) AS street_code,
					arg_max(warning_level, seq) AS warning_level, arg_max(plan_id, seq) FILTER (WHERE event = 'activated') AS plan_id,
					arg_max(plan_level, seq) FILTER (WHERE event = 'activated') AS plan_level, min(opened_at) AS opened_at,
					count(DISTINCT task_id) AS tasks, count(DISTINCT task_id) FILTER (WHERE event = 'acknowledged') AS acknowledged,
					bool_or(event = 'closed' AND task_id IS NULL) AS closed, bool_or(event = 'cleared') AS cleared
				FROM {0} WHERE response_id IS NOT NULL GROUP BY response_id)
			SELECT r.response_id AS id, r.name_zh AS name, `+lonX+` AS lon, `+latX+` AS lat,
				r.plan_id, r.plan_level, r.warning_level, r.tasks, r.acknowledged, r.opened_at, r.street_code,
				CASE WHEN `+exact+` IS NULL THEN 'street_centre' ELSE 'exact' END AS located
			FROM r `+strings.Join(joins, " ")+`
			WHERE NOT r.closed AND NOT r.cleared AND `+lonX+` IS NOT NULL
			ORDER BY r.opened_at DESC LIMIT 500`, tables)
	},
	"incidents": func(s *Server, x *q, f filters) Section {
		a := []any{f.fromTS, f.toTS}
		cond := f.streetCond("street_code", &a)
		return x.rows(`SELECT coalesce(id, '') AS id, coalesce(title, category) AS name, longitude AS lon, latitude AS lat, category, title, description, address, received_at, street_code
			FROM {0} WHERE longitude IS NOT NULL AND received_at >= CAST(? AS TIMESTAMPTZ) AND received_at < CAST(? AS TIMESTAMPTZ)`+cond+`
			ORDER BY received_at DESC LIMIT 2000`, []string{"raw.incidents"}, a...)
	},
}

func (s *Server) mapLayer(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("layer")
	fn, ok := layers[name]
	if !ok {
		var names []string
		for n := range layers {
			names = append(names, n)
		}
		sort.Strings(names)
		writeErr(w, http.StatusNotFound, fmt.Sprintf("no map layer %q / 没有该图层 (layers: %s)", name, strings.Join(names, ", ")))
		return
	}
	f, err := s.parseFilters(r)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err.Error())
		return
	}
	s.cached(w, r, f.key, func(x *q) (any, error) { return fn(s, x, f), nil })
}

// risk is the drill-down: streets, then a street's communities, then a
// community's enterprises, each with counts per level.
func (s *Server) risk(w http.ResponseWriter, r *http.Request) {
	f, err := s.parseFilters(r)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err.Error())
		return
	}
	s.cached(w, r, f.key, func(x *q) (any, error) {
		var a []any
		ind := f.industryCond("r.industry", &a)
		out := map[string]any{"street": f.street, "community": f.community}
		switch {
		case f.community != "":
			a = append([]any{f.community}, a...)
			out["enterprises"] = x.rows(`SELECT r.enterprise_id, coalesce(r.enterprise_name, r.enterprise_id) AS name, r.level, r.score, r.industry, r.top_factors_zh, r.top_factors_en
				FROM {0} r WHERE r.community_code = ?`+ind+` ORDER BY r.score DESC, r.enterprise_id LIMIT 1000`, []string{"marts.enterprise_risk"}, a...)
		case f.street != "":
			a = append([]any{f.street}, a...)
			if x.has("raw.communities") {
				out["communities"] = x.rows(`SELECT r.community_code, coalesce(c.name_zh, r.community_code) AS name_zh, coalesce(c.name_en, c.name_zh, r.community_code) AS name_en, r.level, count(*) AS n
					FROM {0} r LEFT JOIN {1} c ON c.community_code = r.community_code WHERE r.street_code = ?`+ind+` GROUP BY ALL ORDER BY 1, 4`,
					[]string{"marts.enterprise_risk", "raw.communities"}, a...)
			} else {
				out["communities"] = x.rows(`SELECT r.community_code, r.community_code AS name_zh, r.community_code AS name_en, r.level, count(*) AS n
					FROM {0} r WHERE r.street_code = ?`+ind+` GROUP BY ALL ORDER BY 1, 4`, []string{"marts.enterprise_risk"}, a...)
			}
		default:
			out["streets"] = x.rows(`SELECT r.street_code, r.level, count(*) AS n FROM {0} r WHERE true`+ind+` GROUP BY 1, 2 ORDER BY 1, 2`, []string{"marts.enterprise_risk"}, a...)
		}
		out["industries"] = x.rows(`SELECT r.industry, r.level, count(*) AS n FROM {0} r WHERE true`+f.streetCond("r.street_code", &[]any{})+` GROUP BY 1, 2 ORDER BY 1, 2`,
			[]string{"marts.enterprise_risk"}, streetArgs(f)...)
		return out, nil
	})
}

func streetArgs(f filters) []any {
	if f.street == "" {
		return nil
	}
	return []any{f.street}
}

func (s *Server) enterprise(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !idRE.MatchString(id) {
		writeErr(w, http.StatusBadRequest, "企业编号无效 / not an enterprise id")
		return
	}
	s.cached(w, r, "id="+url.QueryEscape(id), func(x *q) (any, error) {
		return map[string]any{
			"enterprise":   x.rows(`SELECT * EXCLUDE (_cursor) FROM {0} WHERE id = ? QUALIFY row_number() OVER (ORDER BY updated_at DESC) = 1`, []string{"raw.enterprises"}, id),
			"risk":         x.rows(`SELECT * FROM {0} WHERE enterprise_id = ?`, []string{"marts.enterprise_risk"}, id),
			"risk_sources": x.rows(`SELECT id, name, kind, lec_l, lec_e, lec_c, lec_l * lec_e * lec_c AS lec_d, assessed_on FROM {0} WHERE enterprise_id = ? ORDER BY lec_d DESC, id`, []string{"raw.risk_sources"}, id),
			"hazards":      x.rows(`SELECT id, found_at, level, status, description, deadline, rectified_at FROM {0} WHERE enterprise_id = ? ORDER BY found_at DESC LIMIT 200`, []string{"raw.hazards"}, id),
			"inspections":  x.rows(`SELECT id, inspected_at, result, hazards_found, notes FROM {0} WHERE enterprise_id = ? ORDER BY inspected_at DESC LIMIT 100`, []string{"raw.inspections"}, id),
			"history":      x.rows(`SELECT as_of_date, score, level FROM {0} WHERE enterprise_id = ? ORDER BY as_of_date DESC LIMIT 400`, []string{"marts.enterprise_risk_daily"}, id),
		}, nil
	})
}

func (s *Server) crowdVenues(w http.ResponseWriter, r *http.Request) {
	f, err := s.parseFilters(r)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err.Error())
		return
	}
	s.cached(w, r, f.key, func(x *q) (any, error) {
		var a []any
		cond := f.streetCond("street_code", &a)
		return map[string]any{"venues": x.rows(`SELECT venue_id, name_zh, name_en, kind, capacity_people, area_m2, street_code FROM {0} WHERE true`+cond+` ORDER BY venue_id`, []string{"raw.venues"}, a...)}, nil
	})
}

// crowdVenue is one venue's people over time, the warning engine's
// forecasts in people, the people at which each warning level is reached,
// and the venue's warnings' lifecycle.
//
// People are the count the venue's warnings are raised on: its own count
// (raw.crowd_counts, direction total: an electronic fence or gate counters)
// when its warnings come from that rule or it has one, else its grid cells'
// (raw.venue_cells share × raw.mobile_signal people_count).
// Forecasts are the engine's (marts.warnings forecast_value at event_time
// + horizon) converted from their metric: capacity ratio × capacity,
// density × area. Level thresholds are warnings.crowd's levels converted the
// same way; the lower of the two is where a level is first reached.
func (s *Server) crowdVenue(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("venue")
	if !idRE.MatchString(id) {
		writeErr(w, http.StatusBadRequest, "场所编号无效 / not a venue id")
		return
	}
	f, err := s.parseFilters(r)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err.Error())
		return
	}
	s.cached(w, r, f.key+"&venue="+url.QueryEscape(id), func(x *q) (any, error) {
		rng := []any{id, f.fromTS, f.toTS}
		venue := x.rows(`SELECT * EXCLUDE (_cursor) FROM {0} WHERE venue_id = ? QUALIFY row_number() OVER (ORDER BY updated_at DESC) = 1`, []string{"raw.venues"}, id)
		// The count the venue's warnings were raised on: the venue's own count
		// (raw.crowd_counts, rule crowd_counts.crowd_venue) or its grid cells'
		// (raw.mobile_signal, rule mobile_signal.crowd_venue) — the page plotted
		// the grid's while the warnings came from the gate's, and the two
		// disagreed. Without warnings in range: the venue's own count if any.
		var grid, counts Section
		if x.has("raw.venue_cells") && x.has("raw.mobile_signal") {
			grid = x.rows(`WITH cells AS (SELECT grid_cell_id, coalesce(share, 1.0) AS share FROM {0} WHERE venue_id = ?
					QUALIFY row_number() OVER (PARTITION BY grid_cell_id ORDER BY updated_at DESC) = 1)
				SELECT m.window_start AS t, CASE WHEN sum(m.people_count * c.share) < ? THEN NULL ELSE round(sum(m.people_count * c.share)) END AS people
				FROM {1} m JOIN cells c USING (grid_cell_id)
				WHERE m.window_start >= CAST(? AS TIMESTAMPTZ) AND m.window_start < CAST(? AS TIMESTAMPTZ) GROUP BY 1 ORDER BY 1`,
				[]string{"raw.venue_cells", "raw.mobile_signal"}, id, x.scope.Suppress, f.fromTS, f.toTS)
		}
		if x.has("raw.crowd_counts") {
			counts = x.rows(`SELECT observed_at AS t, max(people) AS people FROM {0} WHERE site_id = ? AND direction = 'total' AND observed_at >= CAST(? AS TIMESTAMPTZ) AND observed_at < CAST(? AS TIMESTAMPTZ) GROUP BY 1 ORDER BY 1`, []string{"raw.crowd_counts"}, rng...)
		}
		lifecycle := x.rows(`SELECT warning_id, rule, level, state, predicted, metric, observed_value, forecast_value, threshold, unit, people_count, event_time, transition_at, message_zh, message_en FROM {0}
				WHERE subject_type = 'venue' AND subject_id = ? AND transition_at >= CAST(? AS TIMESTAMPTZ) AND transition_at < CAST(? AS TIMESTAMPTZ) ORDER BY transition_at DESC LIMIT 500`,
			[]string{"marts.warnings"}, rng...)
		rule := ""
		if len(lifecycle.Rows) > 0 {
			rule, _ = lifecycle.Rows[0]["rule"].(string)
		}
		actual, source := grid, "mobile_signal"
		switch {
		case strings.HasPrefix(rule, "mobile_signal.") && len(grid.Rows) > 0:
		case len(counts.Rows) > 0:
			actual, source = counts, "crowd_counts"
		case len(grid.Rows) == 0 && counts.Missing == "":
			actual, source = counts, "crowd_counts"
		}
		var capacity, area float64
		if len(venue.Rows) == 1 {
			capacity, _ = toFloat(venue.Rows[0]["capacity_people"])
			area, _ = toFloat(venue.Rows[0]["area_m2"])
		}
		return map[string]any{
			"venue":  venue,
			"actual": actual,
			"forecast": x.rows(`SELECT event_time + to_minutes(CAST(coalesce(horizon_min, 0) AS BIGINT)) AS t, metric, forecast_value,
					round(CASE metric WHEN 'capacity_ratio' THEN forecast_value * ? WHEN 'density_per_m2' THEN forecast_value * ? WHEN 'people' THEN forecast_value END) AS people, level
				FROM {0} WHERE subject_type = 'venue' AND subject_id = ? AND forecast_value IS NOT NULL AND event_time >= CAST(? AS TIMESTAMPTZ) AND event_time < CAST(? AS TIMESTAMPTZ) ORDER BY 1`,
				[]string{"marts.warnings"}, nullIfZero(capacity), nullIfZero(area), id, f.fromTS, f.toTS),
			"thresholds": s.crowdThresholds(capacity, area),
			"lifecycle":  lifecycle,
			// source: which count "actual" is (crowd_counts: the venue's own,
			// mobile_signal: its grid cells'); rule: the warnings' rule.
			"source": source,
			"rule":   rule,
		}, nil
	})
}

// crowdThresholds: people at which each level is reached at a venue.
func (s *Server) crowdThresholds(capacity, area float64) Section {
	out := Section{Rows: []map[string]any{}}
	for _, l := range []string{"blue", "yellow", "orange", "red"} {
		best, basis := 0.0, ""
		if r := s.d.CrowdLevels.CapacityRatio[l]; r > 0 && capacity > 0 {
			best, basis = r*capacity, "capacity_ratio"
		}
		if d := s.d.CrowdLevels.DensityPerM2[l]; d > 0 && area > 0 && (best == 0 || d*area < best) {
			best, basis = d*area, "density_per_m2"
		}
		if best > 0 {
			out.Rows = append(out.Rows, map[string]any{"level": l, "threshold": math.Round(best), "basis": basis})
		}
	}
	if len(out.Rows) == 0 {
		return Section{Missing: "no_data", Detail: "no capacity or area for this venue, or no crowd levels configured"}
	}
	return out
}

// levelOf is the level column of an enterprises layer's table (raw.enterprises has none).
func levelOf(table string) string {
	if table == "raw.enterprises" {
		return "CAST(NULL AS VARCHAR)"
	}
	return "e.level"
}

func toFloat(v any) (float64, bool) {
	switch t := v.(type) {
	case float64:
		return t, true
	case int64:
		return float64(t), true
	case int32:
		return float64(t), true
	}
	return 0, false
}

func nullIfZero(f float64) any {
	if f == 0 {
		return nil
	}
	return f
}
