package sim

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"
)

// Feed column layouts (file drops). Column names are the canonical field
// names where the department would plausibly use them.
var (
	MobileCols  = []string{"grid_cell_id", "window_start", "people_count", "inflow", "outflow"}
	TrafficCols = []string{"segment_id", "observed_at", "interval_s", "road_name", "speed_kmh", "volume_vph", "free_flow_kmh", "occupancy_pct", "street_code"}
	PoliceCols  = []string{"case_id", "occurred_at", "category", "description", "offense_code", "district", "beat", "address", "longitude", "latitude"}
	PermitCols  = []string{"permit_id", "issued_at", "applied_at", "permit_type", "work_description", "address", "construction_value", "dwelling_units", "status", "longitude", "latitude"}
)

func ts(t time.Time) string { return t.In(Shanghai).Format(time.RFC3339) }

func f2(v float64) string { return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64) }

// slot is the index of the interval starting at t (since the Unix epoch), so
// sequence numbers keep increasing across restarts.
func slot(t time.Time, d time.Duration) int64 { return t.Unix() / int64(d/time.Second) }

// cellCount is the people in cell ci during the interval starting at t:
// residents and workers, plus its share of the people in the venues that
// cover it (vp, from venuePeople: surges and busy events included), with
// the mobile-signal count's own noise.
func (s *Sim) cellCount(ci int, t time.Time, vp []float64, noise float64) float64 {
	n := s.cellResidents(ci, t)
	for _, vs := range s.W.Cells[ci].venueShare {
		n += vp[vs.venue] * vs.share
	}
	return math.Max(0, n*(1+0.03*noise))
}

// MobileRows are the mobile-signal counts of every cell for the interval
// starting at t (a multiple of rates.mobile_interval).
func (s *Sim) MobileRows(t time.Time) [][]string {
	d := s.Cfg.Rates.MobileInterval
	k := slot(t, d)
	prevT := t.Add(-d)
	rain, prevRain := s.rain(t), s.rain(prevT)
	act, prevAct := s.active(t, d), s.active(prevT, d)
	r, pr := rng(s.Cfg.Seed, "mobile", k), rng(s.Cfg.Seed, "mobile", k-1)
	vp, prevVP := s.venuePeople(t, rain, act), s.venuePeople(prevT, prevRain, prevAct)
	rows := make([][]string, len(s.W.Cells))
	for ci := range s.W.Cells {
		now := math.Round(s.cellCount(ci, t, vp, r.NormFloat64()))
		prev := math.Round(s.cellCount(ci, prevT, prevVP, pr.NormFloat64()))
		churn := math.Round(0.06 * math.Min(now, prev))
		in, out := churn, churn
		if now > prev {
			in += now - prev
		} else {
			out += prev - now
		}
		rows[ci] = []string{s.W.Cells[ci].ID, ts(t), strconv.FormatFloat(now, 'f', 0, 64), strconv.FormatFloat(in, 'f', 0, 64), strconv.FormatFloat(out, 'f', 0, 64)}
	}
	return rows
}

// demand is the daily water-demand profile (1 = mean).
var demand = [24]float64{.45, .4, .38, .38, .42, .6, 1.05, 1.45, 1.35, 1.15, 1.05, 1.1, 1.2, 1.05, .95, .95, 1.0, 1.15, 1.35, 1.4, 1.3, 1.05, .8, .6}

// WaterMsg is one MQTT telemetry message (the JSON published).
type WaterMsg struct {
	SensorID   string  `json:"sensor_id"`
	ObservedAt string  `json:"observed_at"`
	Kind       string  `json:"kind"`
	Value      float64 `json:"value"`
	Unit       string  `json:"unit"`
	Seq        int64   `json:"seq"`
	SiteKind   string  `json:"site_kind"`
	Alarm      bool    `json:"alarm"`
	StreetCode string  `json:"street_code"`
	Longitude  float64 `json:"longitude"`
	Latitude   float64 `json:"latitude"`
}

// JSON is the message's payload.
func (m WaterMsg) JSON() []byte {
	b, _ := json.Marshal(m)
	return b
}

// WaterMsgs are the readings of every sensor for the interval starting at t.
func (s *Sim) WaterMsgs(t time.Time) []WaterMsg {
	d := s.Cfg.Rates.WaterInterval
	k := slot(t, d)
	r := rng(s.Cfg.Seed, "water", k)
	h := hourFrac(t)
	dem := interp(&demand, h)
	act := s.active(t, d)
	// recent rain drives the water level at low points (mm over the last
	// 3 hours, older hours weighing less)
	var wet float64
	for i := 0; i < 3; i++ {
		wet += s.rain(t.Add(-time.Duration(i)*time.Hour)) * []float64{1, 0.5, 0.2}[i]
	}
	out := make([]WaterMsg, len(s.W.Sensors))
	for i, se := range s.W.Sensors {
		noise := r.NormFloat64()
		var v float64
		switch se.Kind {
		case "pressure":
			v = se.Base*(1.08-0.08*dem) + 0.004*noise
		case "flow":
			v = se.Base * dem * (1 + 0.03*noise)
		case "water_level":
			coef := 0.006
			if se.SiteKind == "underpass" {
				coef = 0.01
			}
			v = math.Max(0, coef*math.Max(0, wet-4)+0.002*noise)
		case "gas":
			v = math.Max(0, se.Base+0.1*noise)
		}
		for _, in := range act {
			if in.Kind != KindPipeBurst {
				continue
			}
			f := in.intensity(t)
			dist := distM(se.Lon, se.Lat, in.Longitude, in.Latitude)
			near := math.Max(0, 1-dist/1500)
			if se.ID == in.SensorID {
				near = 1
			}
			switch se.Kind {
			case "pressure":
				v -= 0.22 * f * near
			case "flow":
				v *= 1 + 1.8*f*near
			}
		}
		v = math.Max(0, v)
		val := math.Round(v*1000) / 1000
		if se.Kind == "flow" {
			val = math.Round(v*10) / 10
		}
		alarm := val < se.NormalMin || val > se.NormalMax
		out[i] = WaterMsg{SensorID: se.ID, ObservedAt: ts(t), Kind: se.Kind, Value: val, Unit: se.Unit, Seq: k, SiteKind: se.SiteKind,
			Alarm: alarm, StreetCode: se.Street, Longitude: se.Lon, Latitude: se.Lat}
	}
	return out
}

var (
	congWork = [24]float64{.03, .02, .02, .02, .03, .08, .25, .55, .60, .42, .30, .28, .30, .28, .30, .35, .45, .58, .62, .45, .30, .20, .10, .05}
	congRest = [24]float64{.03, .02, .02, .02, .02, .04, .08, .15, .22, .30, .35, .35, .33, .32, .33, .35, .38, .40, .38, .30, .22, .15, .08, .04}
)

// TrafficRows are the speeds of every segment for the interval at t.
func (s *Sim) TrafficRows(t time.Time) [][]string {
	d := s.Cfg.Rates.TrafficInterval
	r := rng(s.Cfg.Seed, "traffic", slot(t, d))
	p := &congWork
	if s.restDay(t) {
		p = &congRest
	}
	cong := interp(p, hourFrac(t))
	rain := s.rain(t)
	act := s.active(t, d)
	rows := make([][]string, len(s.W.Segments))
	for i, sg := range s.W.Segments {
		c := cong * (0.8 + 0.4*r.Float64())
		if rain > 2 {
			c += math.Min(0.3, rain/100)
		}
		for _, in := range act {
			if in.Kind == KindCrowdSurge && in.StreetCode == sg.Street {
				c += 0.35 * in.intensity(t)
			}
		}
		c = math.Min(0.92, c)
		speed := sg.FreeFlow * (1 - c) * (1 + 0.04*r.NormFloat64())
		vol := float64(sg.Lanes) * 1800 * math.Min(1, 0.15+1.6*c) * (1 - 0.6*math.Max(0, c-0.6))
		rows[i] = []string{sg.ID, ts(t), strconv.Itoa(int(d / time.Second)), sg.Road, f2(math.Max(3, speed)), f2(vol), f2(sg.FreeFlow), f2(100 * math.Min(0.95, 0.05+c)), sg.Street}
	}
	return rows
}

// hourly event rate profile (share of the day's events per hour ×24)
var eventProfile = [24]float64{.25, .15, .1, .1, .1, .2, .5, 1.0, 1.5, 1.7, 1.7, 1.6, 1.4, 1.5, 1.6, 1.6, 1.5, 1.4, 1.3, 1.2, 1.0, .8, .6, .4}

// CityEvent is a 12345 service request as the Open311 endpoint serves it.
type CityEvent struct {
	ID          string
	Requested   time.Time
	Closed      time.Time
	Category    string
	Code        string
	Agency      string
	Description string
	Resolution  string
	Address     string
	Channel     string
	Lon, Lat    float64
}

var cityCats = []struct {
	zh, code, agency string
	w                float64
	hours            float64
}{
	{"噪声扰民", "noise", "区城管委", 14, 20}, {"占道经营", "street_vending", "区城管执法局", 10, 12}, {"垃圾清运", "garbage", "区城管委", 12, 10},
	{"违规停车", "parking", "西城交通支队", 12, 6}, {"供暖问题", "heating", "区城管委", 8, 36}, {"供水问题", "water_supply", "区水务局", 6, 18},
	{"道路破损", "road_damage", "区市政市容委", 6, 72}, {"路灯损坏", "street_light", "区市政市容委", 5, 48}, {"房屋安全", "building_safety", "区住建委", 4, 96},
	{"物业服务", "property", "区住建委", 10, 60}, {"消防隐患", "fire_hazard", "区消防救援支队", 3, 24}, {"燃气安全", "gas_safety", "区城管委", 2, 8},
	{"其他", "other", "区政务服务局", 8, 48},
}

// CityEvents are the 12345 requests received during the hour starting at t.
func (s *Sim) CityEvents(t time.Time) []CityEvent {
	t = t.Truncate(time.Hour)
	r := rng(s.Cfg.Seed, "city_events", t.Unix()/3600)
	mean := s.Cfg.Rates.CityEventsPerDay * float64(s.Cfg.Scale) / 24 * eventProfile[t.In(Shanghai).Hour()]
	n := poisson(r, mean)
	ws := make([]float64, len(cityCats))
	for i, c := range cityCats {
		ws[i] = c.w
	}
	channels := []string{"phone", "phone", "phone", "online", "mobile_app", "wechat", "grid_patrol"}
	var out []CityEvent
	add := func(cat int, lon, lat float64, at time.Time, desc string) {
		c := cityCats[cat]
		e := CityEvent{Requested: at, Category: c.zh, Code: c.code, Agency: c.agency, Description: desc,
			Address: fmt.Sprintf("北京市西城区%s%d号附近", streetRoad(r), 1+r.IntN(150)), Channel: channels[r.IntN(len(channels))], Lon: lon, Lat: lat}
		e.Closed = at.Add(time.Duration(c.hours * math.Exp(0.7*r.NormFloat64()) * float64(time.Hour))).Truncate(time.Second)
		e.Resolution = "已处置，诉求人满意"
		out = append(out, e)
	}
	for i := 0; i < n; i++ {
		cat := pick(r, ws)
		ci := r.IntN(len(s.W.Cells))
		lon, lat := s.W.randomPoint(r, ci)
		add(cat, lon, lat, t.Add(time.Duration(r.IntN(3600))*time.Second), cityCats[cat].zh+"：群众反映")
	}
	for _, in := range s.active(t, time.Hour) {
		switch in.Kind {
		case KindPipeBurst:
			for k := poisson(r, 6*in.intensity(t.Add(30*time.Minute))); k > 0; k-- {
				add(5, in.Longitude+(r.Float64()-0.5)*0.004, in.Latitude+(r.Float64()-0.5)*0.003, t.Add(time.Duration(r.IntN(3600))*time.Second), "供水问题：路面冒水、停水")
			}
		case KindRainstorm:
			for k := poisson(r, 10*in.intensity(t.Add(30*time.Minute))); k > 0; k-- {
				ci := r.IntN(len(s.W.Cells))
				lon, lat := s.W.randomPoint(r, ci)
				add(6, lon, lat, t.Add(time.Duration(r.IntN(3600))*time.Second), "道路积水：路面积水较深")
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Requested.Before(out[j].Requested) })
	for i := range out {
		out[i].ID = fmt.Sprintf("12345-%s-%04d", t.In(Shanghai).Format("20060102-15"), i+1)
		out[i].Requested = out[i].Requested.Truncate(time.Second)
	}
	return out
}

// Open311 renders the request as GeoReport v2 JSON as of asOf (status and
// updated time depend on whether it was closed by then).
func (e CityEvent) Open311(asOf time.Time) map[string]any {
	m := map[string]any{
		"service_request_id": e.ID, "service_name": e.Category, "service_code": e.Code, "description": e.Description,
		"agency_responsible": e.Agency, "requested_datetime": ts(e.Requested), "address": e.Address, "lat": e.Lat, "long": e.Lon,
		"status": "open", "updated_datetime": ts(e.Requested), "channel": e.Channel, "status_notes": nil, "closed_datetime": nil,
	}
	if !e.Closed.After(asOf) {
		m["status"], m["updated_datetime"], m["closed_datetime"], m["status_notes"] = "closed", ts(e.Closed), ts(e.Closed), e.Resolution
	}
	return m
}

// Call is an emergency call (119 / 120 / 122 / 110).
type Call struct {
	ID         string  `json:"call_id"`
	ReceivedAt string  `json:"received_at"`
	Line       string  `json:"line"`
	Category   string  `json:"category"`
	Title      string  `json:"title"`
	Detail     string  `json:"detail"`
	Address    string  `json:"address"`
	StreetName string  `json:"street_name"`
	Longitude  float64 `json:"longitude"`
	Latitude   float64 `json:"latitude"`
	at         time.Time
}

var callKinds = []struct {
	line, cat string
	w         float64
	titles    []string
}{
	{"120", "medical", 55, []string{"120: 突发疾病", "120: 摔伤", "120: 胸痛", "120: 呼吸困难"}},
	{"122", "traffic", 20, []string{"122: 机动车剐蹭", "122: 非机动车事故", "122: 人车事故"}},
	{"119", "fire", 9, []string{"119: 厨房起火", "119: 电动自行车起火", "119: 垃圾起火", "119: 电气火灾"}},
	{"110", "police", 10, []string{"110: 求助", "110: 纠纷"}},
	{"12345", "other", 6, []string{"其他: 困人", "其他: 动物伤人"}},
}

// Calls are the emergency calls received during the hour starting at t.
func (s *Sim) Calls(t time.Time) []Call {
	t = t.Truncate(time.Hour)
	r := rng(s.Cfg.Seed, "calls", t.Unix()/3600)
	n := poisson(r, s.Cfg.Rates.EmergencyCallsPerDay*float64(s.Cfg.Scale)/24*eventProfile[t.In(Shanghai).Hour()])
	ws := make([]float64, len(callKinds))
	for i, k := range callKinds {
		ws[i] = k.w
	}
	var out []Call
	add := func(kind int, lon, lat float64, at time.Time) {
		k := callKinds[kind]
		st, _ := s.W.area.locate(lon, lat)
		out = append(out, Call{ReceivedAt: ts(at), at: at, Line: k.line, Category: k.cat, Title: k.titles[r.IntN(len(k.titles))],
			Address: fmt.Sprintf("北京市西城区%s%d号", streetRoad(r), 1+r.IntN(150)), StreetName: s.streetName(st), Longitude: lon, Latitude: lat})
	}
	for i := 0; i < n; i++ {
		ci := r.IntN(len(s.W.Cells))
		lon, lat := s.W.randomPoint(r, ci)
		add(pick(r, ws), lon, lat, t.Add(time.Duration(r.IntN(3600))*time.Second))
	}
	for _, in := range s.active(t, time.Hour) {
		if in.Kind != KindFireCluster {
			continue
		}
		// the cluster's calls spread over [Start, End), denser at the peak
		cr := rng(s.Cfg.Seed, "fire_cluster", in.Start.Unix())
		for k := 0; k < in.Calls; k++ {
			off := time.Duration(float64(in.Peak.Sub(in.Start)) * (0.3 + 1.4*cr.Float64()))
			at := in.Start.Add(off).Truncate(time.Second)
			lon := round6(in.Longitude + (cr.Float64()-0.5)*0.003)
			lat := round6(in.Latitude + (cr.Float64()-0.5)*0.002)
			if !at.Before(t) && at.Before(t.Add(time.Hour)) {
				add(2, lon, lat, at)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].at.Before(out[j].at) })
	for i := range out {
		out[i].ID = fmt.Sprintf("CALL-%s-%04d", t.In(Shanghai).Format("20060102-15"), i+1)
	}
	return out
}

func (s *Sim) streetName(code string) string {
	for _, st := range s.W.Streets {
		if st.Code == code {
			return st.NameZH
		}
	}
	return ""
}

var policeKinds = []struct {
	zh, code string
	w        float64
}{{"盗窃", "0201", 30}, {"诈骗", "0205", 15}, {"治安纠纷", "0301", 25}, {"扰乱公共秩序", "0310", 10}, {"交通肇事逃逸", "0410", 5}, {"寻衅滋事", "0312", 5}, {"其他", "0900", 10}}

// PoliceRows are the police cases that occurred during the hour at t.
func (s *Sim) PoliceRows(t time.Time) [][]string {
	t = t.Truncate(time.Hour)
	r := rng(s.Cfg.Seed, "police", t.Unix()/3600)
	mean := s.Cfg.Rates.PoliceCasesPerDay * float64(s.Cfg.Scale) / 24 * eventProfile[t.In(Shanghai).Hour()]
	n := poisson(r, mean)
	ws := make([]float64, len(policeKinds))
	for i, k := range policeKinds {
		ws[i] = k.w
	}
	type pc struct {
		at  time.Time
		row []string
	}
	var cases []pc
	add := func(k int, lon, lat float64, at time.Time) {
		st, _ := s.W.area.locate(lon, lat)
		name := []rune(s.streetName(st))
		district := string(name)
		if len(name) > 2 {
			district = string(name[:len(name)-2]) + "派出所"
		}
		cases = append(cases, pc{at, []string{"", ts(at), policeKinds[k].zh, policeKinds[k].zh + "警情", policeKinds[k].code, district,
			fmt.Sprintf("%s-%02d", st, 1+r.IntN(12)), fmt.Sprintf("北京市西城区%s%d号", streetRoad(r), 1+r.IntN(150)), f6(lon), f6(lat)}})
	}
	for i := 0; i < n; i++ {
		ci := r.IntN(len(s.W.Cells))
		lon, lat := s.W.randomPoint(r, ci)
		add(pick(r, ws), lon, lat, t.Add(time.Duration(r.IntN(3600))*time.Second))
	}
	for _, in := range s.active(t, time.Hour) {
		if in.Kind == KindCrowdSurge {
			for k := poisson(r, 4*in.intensity(t.Add(30*time.Minute))); k > 0; k-- {
				add([]int{0, 3}[r.IntN(2)], in.Longitude+(r.Float64()-0.5)*0.003, in.Latitude+(r.Float64()-0.5)*0.002, t.Add(time.Duration(r.IntN(3600))*time.Second))
			}
		}
	}
	sort.SliceStable(cases, func(i, j int) bool { return cases[i].at.Before(cases[j].at) })
	rows := make([][]string, len(cases))
	for i, c := range cases {
		c.row[0] = fmt.Sprintf("J%s-%04d", t.In(Shanghai).Format("20060102-15"), i+1)
		rows[i] = c.row
	}
	return rows
}

func f6(v float64) string { return strconv.FormatFloat(round6(v), 'f', -1, 64) }

// PermitRows are the building permits issued on the day starting at t.
func (s *Sim) PermitRows(t time.Time) [][]string {
	r := rng(s.Cfg.Seed, "permits", t.Unix()/86400)
	n := poisson(r, s.Cfg.Rates.PermitsPerDay*float64(s.Cfg.Scale))
	kinds := []struct{ zh, desc string }{{"新建", "新建住宅楼"}, {"改建", "老旧小区综合整治"}, {"装修", "室内装饰装修"}, {"拆除", "危旧房拆除"}, {"市政", "地下管线改造"}}
	type pm struct {
		at  time.Time
		row []string
	}
	var ps []pm
	for i := 0; i < n; i++ {
		k := kinds[pick(r, []float64{1, 3, 5, 1, 2})]
		at := t.Add(time.Duration(9*3600+r.IntN(8*3600)) * time.Second)
		applied := at.AddDate(0, 0, -10-r.IntN(80))
		ci := r.IntN(len(s.W.Cells))
		lon, lat := s.W.randomPoint(r, ci)
		units := 0
		if k.zh == "新建" {
			units = 20 + r.IntN(200)
		}
		ps = append(ps, pm{at, []string{"", ts(at), ts(applied), k.zh, k.desc, fmt.Sprintf("北京市西城区%s%d号", streetRoad(r), 1+r.IntN(150)),
			strconv.Itoa(100000 * (1 + r.IntN(500))), strconv.Itoa(units), "已核发", f6(lon), f6(lat)}})
	}
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].at.Before(ps[j].at) })
	rows := make([][]string, len(ps))
	for i, p := range ps {
		p.row[0] = fmt.Sprintf("JZ%s-%03d", t.In(Shanghai).Format("20060102"), i+1)
		rows[i] = p.row
	}
	return rows
}
