package dashboards_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/iceberg-go"

	"citybrain/connectors"
	"citybrain/connectors/sources"
	"citybrain/dashboards/service"
	"citybrain/internal/app"
	"citybrain/internal/auth"
	"citybrain/internal/broker"
	"citybrain/internal/config"
	"citybrain/internal/freshness"
	"citybrain/internal/instances"
	_ "citybrain/pipelines/extracts/service" // the extracts API (/api/extracts), started below
	"citybrain/schemas"
	"citybrain/warehouse"
	_ "citybrain/warehouse/sqlservice" // the SQL console's /api/sql
)

// Marts the models project writes; the fixture declares the columns the
// dashboards read.
const enterpriseRiskYAML = `
name: enterprise_risk
version: 1
table: marts.enterprise_risk
doc: {zh: 企业风险画像, en: Enterprise risk portraits}
event_time: computed_at
fields:
  - {name: enterprise_id, type: string, required: true, doc: {zh: 企业编号, en: Enterprise id}}
  - {name: computed_at, type: timestamp, required: true, doc: {zh: 计算时间, en: Computed at}}
  - {name: as_of_date, type: date, doc: {zh: 画像日期, en: Day}}
  - {name: enterprise_name, type: string, doc: {zh: 名称, en: Name}}
  - {name: street_code, type: string, doc: {zh: 街道, en: Street}}
  - {name: community_code, type: string, doc: {zh: 社区, en: Community}}
  - {name: industry, type: string, doc: {zh: 行业, en: Industry}}
  - {name: longitude, type: double, doc: {zh: 经度, en: Longitude}}
  - {name: latitude, type: double, doc: {zh: 纬度, en: Latitude}}
  - {name: score, type: int, doc: {zh: 评分, en: Score}}
  - {name: level, type: string, doc: {zh: 等级, en: Level}}
  - {name: top_factors_zh, type: string, doc: {zh: 主要因素, en: Factors (zh)}}
  - {name: top_factors_en, type: string, doc: {zh: 主要因素（英文）, en: Factors (en)}}
`

const enterpriseRiskDailyYAML = `
name: enterprise_risk_daily
version: 1
table: marts.enterprise_risk_daily
doc: {zh: 企业风险画像（按日）, en: Enterprise risk portraits per day}
event_time: computed_at
fields:
  - {name: as_of_date, type: date, required: true, doc: {zh: 日期, en: Day}}
  - {name: computed_at, type: timestamp, required: true, doc: {zh: 计算时间, en: Computed at}}
  - {name: enterprise_id, type: string, required: true, doc: {zh: 企业编号, en: Enterprise id}}
  - {name: score, type: int, doc: {zh: 评分, en: Score}}
  - {name: level, type: string, doc: {zh: 等级, en: Level}}
`

const planKPIsYAML = `
name: plan_kpis
version: 1
table: marts.plan_kpis
doc: {zh: 规划目标进度, en: Plan targets}
event_time: computed_at
fields:
  - {name: target_no, type: int, required: true, doc: {zh: 目标序号, en: Target number}}
  - {name: computed_at, type: timestamp, required: true, doc: {zh: 计算时间, en: Computed at}}
  - {name: target_zh, type: string, doc: {zh: 目标, en: Target (zh)}}
  - {name: target_en, type: string, doc: {zh: 目标（英文）, en: Target (en)}}
  - {name: goal, type: double, doc: {zh: 目标值, en: Goal}}
  - {name: unit, type: string, doc: {zh: 单位, en: Unit}}
  - {name: unit_zh, type: string, doc: {zh: 单位（中文）, en: Unit in Chinese}}
  - {name: unit_en, type: string, doc: {zh: 单位（英文）, en: Unit in English}}
  - {name: figure, type: double, doc: {zh: 当前值, en: Figure}}
  - {name: figure_year_before, type: double, doc: {zh: 一年前, en: A year before}}
  - {name: better, type: string, doc: {zh: 方向, en: Direction}}
  - {name: status, type: string, doc: {zh: 状态, en: Status}}
  - {name: trend, type: string, doc: {zh: 趋势, en: Trend}}
  - {name: as_of_date, type: date, doc: {zh: 日期, en: Day}}
`

// XSSText is a 12345 complaint that must show as text.
const XSSText = `<script>window.__xss=1</script><img src=x onerror="window.__xss=2">噪音扰民`

const (
	st1, st3, st7 = "110102001", "110102003", "110102007"
)

// env is a running dashboards server over a fixture lake.
type env struct {
	t    *testing.T
	ctx  context.Context
	dir  string
	rt   *app.Runtime
	lake *warehouse.Lake
	reg  *schemas.Registry
	srv  *httptest.Server
	now  time.Time
	// hold, when set, delays the API requests whose path it matches until
	// the channel it returns is closed (loading states are seen in tests).
	hold atomic.Pointer[func(path string) <-chan struct{}]
}

var shanghai, _ = time.LoadLocation("Asia/Shanghai")

// date is the Beijing date n days before today (a DATE value: UTC midnight).
func (e *env) date(n int) time.Time {
	y, m, d := e.day(n, 0).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// day is local midnight n days before today, plus h hours.
func (e *env) day(n int, h float64) time.Time {
	y, m, d := e.now.In(shanghai).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, shanghai).AddDate(0, 0, -n).Add(time.Duration(h * float64(time.Hour)))
}

func newEnv(t *testing.T) *env { t.Helper(); return newEnvWith(t, false) }

// newEnvWith starts the embedded Kafka broker too when withBroker is set
// (data health: offsets and dead letters).
func newEnvWith(t *testing.T, withBroker bool) *env { t.Helper(); return newEnvCfg(t, withBroker, nil) }

// newEnvCfg lets mod change the configuration first.
func newEnvCfg(t *testing.T, withBroker bool, mod func(*config.Config)) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	dir := t.TempDir()
	cfg := config.Default()
	builtin, err := sources.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range sources.Names() {
		cfg.Defs = append(cfg.Defs, builtin[n])
	}
	cfg.DataDir = dir
	cfg.Auth.DemoUsers = true
	cfg.SQLAccess.PGWire.Listen = "" // HTTP only
	// A request after a commit sees it (in serve it waits 100 ms, then is
	// served the previous answer: TestCacheServesStale).
	cfg.Dashboards.StaleWait = 2 * time.Minute
	if mod != nil {
		mod(&cfg)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg, err := schemas.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	lake, err := warehouse.Open(ctx, cfg.Warehouse, dir, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lake.Close() })
	e := &env{t: t, ctx: ctx, dir: dir, lake: lake, reg: reg, now: time.Now()}
	e.writeFixture()
	eng, err := warehouse.NewEngine(ctx, lake)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	users, err := auth.Open(cfg.Auth, dir)
	if err != nil {
		t.Fatal(err)
	}
	a := &app.App{Cfg: cfg, Log: log, Reg: reg, Lake: lake}
	if withBroker {
		emb, err := broker.StartEmbedded(dir, 0, log)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(emb.Close)
		a.Embedded, a.Client = emb, broker.NewClient([]string{emb.Addr()}, cfg.Broker)
		for _, d := range cfg.Defs {
			if err := a.Client.EnsureTopics(ctx, connectors.RawTopic(d.Name), connectors.DLQTopic(d.Name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	mux := http.NewServeMux()
	a.Mount(mux, eng, nil)
	e.rt = &app.Runtime{App: a, Engine: eng, Mux: mux, Auth: users, Commits: app.NewCommitBus(), Fresh: freshness.New(time.Now, freshness.DefaultThresholds())}
	e.rt.Commits.OnCommit(func(c app.Commit) { eng.Refresh(ctx, c.Table) })
	if withBroker {
		// The platform's instances, as serve runs them (TestHealthInstances adds a silent one).
		e.rt.Instances = instances.New(a.Client, instances.Info{Name: "dash-test", Roles: []string{"all"}}, 200*time.Millisecond, e.rt.Fresh.Rows, log)
		ictx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { e.rt.Instances.Run(ictx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	// The SQL access service (/api/sql) and the extracts' API first, as serve orders them, then the dashboards.
	_, after, err := app.Services(e.rt)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range after {
		if s.Name() != "sql" && s.Name() != "extracts" {
			continue
		}
		if err := s.Start(ctx, e.rt); err != nil {
			t.Fatal(err)
		}
		go s.Run(ctx)
	}
	svc := &service.Service{}
	if err := svc.Start(ctx, e.rt); err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := e.hold.Load(); h != nil {
			if ch := (*h)(r.URL.Path); ch != nil {
				<-ch
			}
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *env) schema(name string) *schemas.Schema {
	s, err := e.reg.Get(name)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func parseSchema(t *testing.T, y string) *schemas.Schema {
	s, err := schemas.Parse([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rec orders named values as the schema's fields (ints as int64).
func rec(s *schemas.Schema, vals map[string]any) schemas.Record {
	r := make(schemas.Record, len(s.Fields))
	for i, f := range s.Fields {
		v, ok := vals[f.Name]
		if !ok {
			continue
		}
		if n, ok := v.(int); ok {
			v = int64(n)
		}
		r[i] = v
	}
	return r
}

var fileSeq int

// write commits records to the schema's table as one snapshot and
// announces the commit.
func (e *env) write(s *schemas.Schema, rows ...map[string]any) {
	t := e.t
	tbl, err := e.lake.EnsureTable(e.ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	type part struct {
		val  any
		recs []schemas.Record
	}
	parts := map[string]*part{}
	for _, row := range rows {
		r := rec(s, row)
		if err := s.Validate(r); err != nil {
			t.Fatalf("fixture %s: %v", s.Table, err)
		}
		pv, dir := warehouse.PartitionKey(s, r)
		if parts[dir] == nil {
			parts[dir] = &part{val: pv}
		}
		parts[dir].recs = append(parts[dir].recs, r)
	}
	var files []iceberg.DataFile
	for dir, p := range parts {
		fileSeq++
		fw, err := e.lake.NewFileWriter(tbl, s, path.Join(dir, fmt.Sprintf("fixture-%06d.parquet", fileSeq)), p.val)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range p.recs {
			if err := fw.Write(r, fmt.Sprintf("fixture:%d", i)); err != nil {
				t.Fatal(err)
			}
		}
		df, err := fw.Close()
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, df)
	}
	st, err := e.lake.State(e.ctx, s.Table)
	if err != nil {
		t.Fatal(err)
	}
	next := st.Clone()
	next.Batch++
	snap, err := e.lake.Commit(e.ctx, s.Table, files, next)
	if err != nil {
		t.Fatal(err)
	}
	if e.rt != nil {
		e.rt.Commits.Publish(app.Commit{Table: s.Table, Snapshot: snap})
	}
}

// The fixture's figures, checked by the tests.
var (
	// enterprises per street and level (marts.enterprise_risk)
	wantEnterprises = map[string]map[string]int{st1: {"red": 1, "orange": 1}, st3: {"yellow": 1, "blue": 1}, st7: {"red": 1}}
	// active warnings per level: W1 red, W3 orange (W2 was cleared)
	wantActive = map[string]int{"red": 1, "orange": 1}
	// people at venue V1 today, hourly
	wantCrowd = []int64{1200, 2500, 4100, 6800, 8300, 7600}
)

func (e *env) writeFixture() {
	now := e.now
	ent := func(id, name, street, community, industry string, lon, lat float64) map[string]any {
		return map[string]any{"id": id, "updated_at": e.day(10, 0), "name": name, "industry": industry, "street_code": street,
			"community_code": community, "longitude": lon, "latitude": lat, "employees": 30, "has_liability_insurance": false,
			"address": "西城区测试路" + id + "号"}
	}
	e.write(e.schema("enterprises"),
		ent("E1", "京西化工仓储有限公司", st1, "C001", "危险化学品", 116.372, 39.905),
		ent("E2", "长安餐饮管理公司", st1, "C001", "餐饮", 116.375, 39.903),
		ent("E3", "新街口燃气站", st3, "C003", "危险化学品", 116.367, 39.945),
		ent("E4", "新街口小吃店", st3, "C003", "餐饮", 116.369, 39.942),
		ent("E5", "月坛酒家", st7, "C007", "餐饮", 116.344, 39.914))
	risk := parseSchema(e.t, enterpriseRiskYAML)
	rk := func(id, name, street, community, industry, level string, score int, lon, lat float64, fzh, fen string) map[string]any {
		return map[string]any{"enterprise_id": id, "computed_at": now.Add(-time.Hour), "as_of_date": e.date(0), "enterprise_name": name,
			"street_code": street, "community_code": community, "industry": industry, "longitude": lon, "latitude": lat,
			"score": score, "level": level, "top_factors_zh": fzh, "top_factors_en": fen}
	}
	e.write(risk,
		rk("E1", "京西化工仓储有限公司", st1, "C001", "危险化学品", "red", 88, 116.372, 39.905, "固有风险重大（D=1440） +40；逾期重大隐患 +20；未投保安责险 +5", "inherent major (D=1440) +40; overdue major hazards +20; no liability insurance +5"),
		rk("E2", "长安餐饮管理公司", st1, "C001", "餐饮", "orange", 65, 116.375, 39.903, "燃气 +30", "gas +30"),
		rk("E3", "新街口燃气站", st3, "C003", "危险化学品", "yellow", 40, 116.367, 39.945, "一般 +20", "general +20"),
		rk("E4", "新街口小吃店", st3, "C003", "餐饮", "blue", 10, 116.369, 39.942, "低 +10", "low +10"),
		rk("E5", "月坛酒家", st7, "C007", "餐饮", "red", 91, 116.344, 39.914, "重大 +40", "major +40"))
	kpi := func(no int, zh, en string, goal float64, unit string, figure any, status string) map[string]any {
		return map[string]any{"target_no": no, "computed_at": now.Add(-time.Hour), "target_zh": zh, "target_en": en, "goal": goal, "unit": unit, "unit_zh": "个", "unit_en": strings.TrimPrefix(unit, "个 "),
			"figure": figure, "better": "higher", "status": status, "as_of_date": e.date(0)}
	}
	ack := kpi(12, "应急响应任务确认用时（中位数）", "median time to acknowledge a response task", 5, "分钟 min", 3.5, "met")
	ack["better"], ack["unit_zh"], ack["unit_en"] = "lower", "分钟", "min"
	e.write(parseSchema(e.t, planKPIsYAML),
		kpi(9, "应急物资储备库（北、中、南）", "emergency-supply warehouses", 3, "个 zones", 2.0, "in_progress"),
		kpi(7, "新增Ⅰ类地震应急避难场所", "new class-I earthquake shelters", 1, "个 shelters", 1.0, "met"),
		kpi(3, "数字化预案平台", "digital emergency-plan platform", 1, "个 platform", nil, "no_data"), ack)
	daily := parseSchema(e.t, enterpriseRiskDailyYAML)
	e.write(daily,
		map[string]any{"as_of_date": e.date(2), "computed_at": now.Add(-3 * time.Hour), "enterprise_id": "E1", "score": 70, "level": "yellow"},
		map[string]any{"as_of_date": e.date(1), "computed_at": now.Add(-2 * time.Hour), "enterprise_id": "E1", "score": 80, "level": "orange"},
		map[string]any{"as_of_date": e.date(0), "computed_at": now.Add(-time.Hour), "enterprise_id": "E1", "score": 88, "level": "red"})
	e.write(e.schema("risk_sources"),
		map[string]any{"id": "R1", "updated_at": e.day(30, 0), "enterprise_id": "E1", "name": "液氨储罐", "kind": "危险化学品", "lec_l": 6.0, "lec_e": 6.0, "lec_c": 40.0},
		map[string]any{"id": "R2", "updated_at": e.day(30, 0), "enterprise_id": "E1", "name": "配电室", "kind": "电气", "lec_l": 3.0, "lec_e": 3.0, "lec_c": 7.0})
	e.write(e.schema("hazards"),
		map[string]any{"id": "H1", "enterprise_id": "E1", "found_at": e.day(20, 10), "level": "major", "status": "overdue", "description": "储罐区可燃气体报警器失效"})
	ev := func(id string, days int, cat, desc, street string) map[string]any {
		return map[string]any{"id": id, "requested_at": e.day(days, 9), "status": "open", "category": cat, "description": desc, "street_code": street}
	}
	e.write(e.schema("city_events"),
		ev("S1", 0, "噪音", XSSText, st1), ev("S2", 1, "噪音", "夜间施工噪音", st1), ev("S3", 1, "占道经营", "路口占道经营", st3),
		ev("S4", 3, "燃气异味", "楼道有燃气味", st7), ev("S5", 3, "噪音", "广场舞音响", st3))
	inc := func(days int, cat, title, street string) map[string]any {
		return map[string]any{"received_at": e.day(days, 14), "category": cat, "title": title, "street_code": street, "longitude": 116.37, "latitude": 39.91}
	}
	e.write(e.schema("incidents"), inc(0, "fire", "火警", st1), inc(1, "medical", "医疗", st3), inc(1, "traffic", "交通", st7), inc(2, "fire", "火警", st1))
	e.write(e.schema("venues"),
		map[string]any{"venue_id": "V1", "updated_at": e.day(10, 0), "name_zh": "西单商圈", "name_en": "Xidan shopping district", "kind": "commercial_district",
			"capacity_people": 10000, "longitude": 116.374, "latitude": 39.907, "street_code": st1, "responsible_unit": "西长安街街道办"},
		map[string]any{"venue_id": "V2", "updated_at": e.day(10, 0), "name_zh": "北京北站", "name_en": "Beijing North railway station", "kind": "railway_station",
			"capacity_people": 20000, "longitude": 116.353, "latitude": 39.944, "street_code": "110102009"})
	// V1's people are those of its grid cells: G1 (all of it) and G2 (half).
	gc := func(id, street string, lon, lat float64) map[string]any {
		return map[string]any{"grid_cell_id": id, "updated_at": e.day(10, 0), "street_code": street, "center_longitude": lon, "center_latitude": lat, "area_m2": 250000.0}
	}
	e.write(e.schema("grid_cells"), gc("G1", st1, 116.374, 39.907), gc("G2", st1, 116.378, 39.907), gc("G3", st7, 116.345, 39.913))
	e.write(e.schema("venue_cells"),
		map[string]any{"venue_id": "V1", "grid_cell_id": "G1", "updated_at": e.day(10, 0), "share": 1.0},
		map[string]any{"venue_id": "V1", "grid_cell_id": "G2", "updated_at": e.day(10, 0), "share": 0.5})
	var ms []map[string]any
	for i, n := range wantCrowd {
		at := e.day(0, float64(8+i))
		ms = append(ms,
			map[string]any{"grid_cell_id": "G1", "window_start": at, "people_count": n - 100},
			map[string]any{"grid_cell_id": "G2", "window_start": at, "people_count": 200},
			map[string]any{"grid_cell_id": "G3", "window_start": at, "people_count": 5}) // below k = 10: suppressed
	}
	e.write(e.schema("mobile_signal"), ms...)
	// V2 is counted at its gates.
	var cc []map[string]any
	for i, n := range []int64{300, 500} {
		cc = append(cc, map[string]any{"site_id": "V2", "observed_at": e.day(0, float64(8+i)), "interval_s": 3600, "direction": "total", "people": n})
	}
	e.write(e.schema("crowd_counts"), cc...)
	e.write(e.schema("shelters"),
		map[string]any{"id": "SH1", "updated_at": e.day(10, 0), "name": "月坛公园应急避难场所", "kind": "outdoor", "level": "class_ii", "capacity_people": 8000, "longitude": 116.345, "latitude": 39.913, "street_code": st7},
		map[string]any{"id": "SH2", "updated_at": e.day(10, 0), "name": "人定湖公园应急避难场所", "kind": "outdoor", "level": "class_iii", "capacity_people": 3000, "longitude": 116.378, "latitude": 39.951, "street_code": st3})
	w := e.schema("warnings")
	wr := func(id string, seq int, level, state string, hoursAgo float64, street, msg string) map[string]any {
		at := now.Add(-time.Duration(hoursAgo * float64(time.Hour)))
		return map[string]any{"warning_id": id, "seq": seq, "kind": "crowd", "rule": "crowd_venue.sql", "metric": "capacity_ratio", "horizon_min": 30, "subject_type": "venue", "subject_id": "V1",
			"subject_name_zh": "西单商圈", "subject_name_en": "Xidan shopping district", "street_code": street, "level": level, "state": state,
			"predicted": state == "raised", "forecast_value": map[string]float64{"yellow": 0.84, "orange": 0.93, "red": 1.05}[level],
			"threshold": map[string]float64{"yellow": 0.8, "orange": 0.9, "red": 1.0}[level], "unit": "ratio", "message_zh": msg, "message_en": "crowd " + level,
			"event_time": at, "transition_at": at, "raised_at": at}
	}
	e.write(w,
		wr("W1", 1, "red", "raised", 3, st1, "西单商圈客流预计超过红色阈值"),
		wr("W2", 2, "yellow", "raised", 30, st3, "黄色预警"), wr("W2", 3, "yellow", "cleared", 28, st3, "黄色预警解除"),
		wr("W3", 4, "orange", "raised", 2, st3, "橙色预警"))
}

// pushWarning commits one new warning transition (as the warning engine would).
func (e *env) pushWarning(id, level, msg string) {
	at := time.Now()
	e.write(e.schema("warnings"), map[string]any{"warning_id": id, "seq": 99, "kind": "crowd", "rule": "crowd_venue.sql", "subject_type": "venue",
		"subject_id": "V2", "subject_name_zh": "北京北站", "subject_name_en": "Beijing North railway station", "street_code": "110102009",
		"level": level, "state": "raised", "predicted": true, "message_zh": msg, "message_en": "pushed " + level,
		"event_time": at, "transition_at": at, "raised_at": at})
}
