package sim

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// LECLevel is the risk level of D = L × E × C (DESIGN.md): major above 320,
// high 160–320, general 70–160, low below 70.
func LECLevel(l, e, c float64) string {
	d := l * e * c
	switch {
	case d > 320:
		return "major"
	case d >= 160:
		return "high"
	case d >= 70:
		return "general"
	}
	return "low"
}

func (w *World) genRisk() {
	r := rng(w.Cfg.Seed, "risk")
	nRisk := w.scaled(w.Cfg.Counts.RiskEnterprises)
	nSrc := w.scaled(w.Cfg.Counts.RiskSources)
	// choose risk enterprises by industry riskiness (weighted sampling
	// without replacement: Efraimidis–Spirakis keys)
	type kv struct {
		key float64
		i   int
	}
	keys := make([]kv, len(w.Units))
	for i, u := range w.Units {
		keys[i] = kv{math.Pow(r.Float64(), 1/industries[u.Industry].risky), i}
	}
	sort.Slice(keys, func(a, b int) bool {
		return keys[a].key > keys[b].key || keys[a].key == keys[b].key && keys[a].i < keys[b].i
	})
	risky := make([]int, nRisk)
	for j := 0; j < nRisk; j++ {
		risky[j] = keys[j].i
		w.Units[keys[j].i].Risk = true
	}
	sort.Ints(risky)
	// sources per enterprise: one each, the rest spread with a heavier tail
	per := make([]int, nRisk)
	for j := range per {
		per[j] = 1
	}
	for k := nRisk; k < nSrc; k++ {
		j := r.IntN(nRisk)
		if r.IntN(3) == 0 { // bigger units hold more
			j = min(j, r.IntN(nRisk))
		}
		per[j]++
	}
	rs := &Table{Name: "risk_sources", Cols: []string{"id", "updated_at", "enterprise_id", "name", "kind", "lec_l", "lec_e", "lec_c", "assessed_on"}}
	seq := 0
	for j, ui := range risky {
		u := w.Units[ui]
		ind := industries[u.Industry]
		for k := 0; k < per[j]; k++ {
			seq++
			kind := ind.kinds[r.IntN(len(ind.kinds))]
			l, e, c := LegalL[pick(r, wL)], LegalE[pick(r, wE)], LegalC[pick(r, wC)]
			assessed := w.Epoch.AddDate(0, 0, -1-r.IntN(700))
			rs.add(fmt.Sprintf("R%06d", seq), w.updated(), u.ID, fmt.Sprintf("%s%s#%d", ind.zh, riskKindZH[kind], k+1), kind, l, e, c, day(assessed))
		}
	}
	w.Tables["risk_sources"] = rs
	// insurance: ≈ InsuredShare overall, twice as likely for risk holders
	share := w.Cfg.Counts.InsuredShare
	fr := float64(nRisk) / float64(len(w.Units))
	pRisk := math.Min(0.95, 2*share/(1+fr))
	pOther := math.Max(0, (share-fr*pRisk)/(1-fr+1e-12))
	ent := w.Tables["enterprises"]
	ri := rng(w.Cfg.Seed, "enterprise-rows")
	for i := range w.Units {
		u := &w.Units[i]
		p := pOther
		if u.Risk {
			p = pRisk
		}
		u.Insured = ri.Float64() < p
		ind := industries[u.Industry]
		name := "北京" + string(brandChars[ri.IntN(len(brandChars))]) + string(brandChars[ri.IntN(len(brandChars))]) +
			string(brandChars[ri.IntN(len(brandChars))]) + ind.zh + "有限公司"
		addr := fmt.Sprintf("北京市西城区%s%d号", streetRoad(ri), 1+ri.IntN(200))
		ent.add(u.ID, w.updated(), name, creditCode(ri, "110102"), ind.zh, addr, u.Street, u.Community, u.Lon, u.Lat, u.Employees, u.Insured, u.Inspector)
	}
	// inspections over the past year, hazards from them
	ins := &Table{Name: "inspections", Cols: []string{"id", "enterprise_id", "inspected_at", "result", "inspector_id", "hazards_found", "notes"}}
	hz := &Table{Name: "hazards", Cols: []string{"id", "enterprise_id", "found_at", "level", "description", "deadline", "rectified_at", "status", "inspection_id", "risk_source_id"}}
	hazardText := []string{"消防通道堵塞", "灭火器过期", "电气线路私拉乱接", "燃气管道老化", "有限空间作业未审批", "安全出口标识缺失", "危化品储存不规范", "应急照明损坏", "特种设备未定期检验", "员工未经安全培训"}
	iseq, hseq := 0, 0
	for _, u := range w.Units {
		n := 0
		if u.Risk {
			n = 1 + r.IntN(4)
		} else if r.Float64() < 0.45 {
			n = 1
		}
		for k := 0; k < n; k++ {
			iseq++
			at := w.Epoch.Add(-time.Duration(1+r.IntN(365*24)) * time.Hour).Truncate(time.Hour).Add(time.Duration(r.IntN(60)) * time.Minute)
			result, found := "pass", 0
			switch x := r.Float64(); {
			case x < 0.08:
				result, found = "fail", 1+r.IntN(3)
			case x < 0.35:
				result, found = "rectify", 1+r.IntN(2)
			}
			id := fmt.Sprintf("INS%07d", iseq)
			ins.add(id, u.ID, at, result, u.Inspector, found, "")
			for h := 0; h < found; h++ {
				hseq++
				level := "general"
				if r.Float64() < 0.05 {
					level = "major"
				}
				days := 30
				if level == "major" {
					days = 60
				}
				deadline := at.AddDate(0, 0, days)
				var rect time.Time
				status := "open"
				if r.Float64() < 0.85 {
					rect = at.Add(time.Duration(1+r.IntN(days*30)) * time.Hour)
					if rect.After(w.Epoch) {
						rect = time.Time{}
					}
				}
				switch {
				case !rect.IsZero():
					status = "rectified"
				case deadline.Before(w.Epoch):
					status = "overdue"
				}
				hz.add(fmt.Sprintf("H%07d", hseq), u.ID, at, level, hazardText[r.IntN(len(hazardText))], day(deadline), rect, status, id, "")
			}
		}
	}
	w.Tables["inspections"] = ins
	w.Tables["hazards"] = hz
}

func (w *World) pointInStreet(r interface{ IntN(int) int }, street string) int {
	cells := w.cellsOf[street]
	return cells[r.IntN(len(cells))]
}

func (w *World) genFacilities() {
	r := rng(w.Cfg.Seed, "facilities")
	// shelters: a few class I, more class II/III; certification years spread over the plan
	sh := &Table{Name: "shelters", Cols: []string{"id", "updated_at", "name", "kind", "level", "capacity_people", "area_m2", "certified_on", "address", "longitude", "latitude", "street_code"}}
	n := w.scaled(w.Cfg.Counts.Shelters)
	for i := 0; i < n; i++ {
		ci := r.IntN(len(w.Cells))
		lon, lat := w.randomPoint(r, ci)
		level := []string{"class_i", "class_ii", "class_iii"}[pick(r, []float64{1, 4, 9})]
		kind := "outdoor"
		if r.IntN(3) == 0 {
			kind = "indoor"
		}
		area := 2000 + r.Float64()*30000
		if level == "class_i" {
			area += 40000
		}
		var cert time.Time
		if r.Float64() < 0.8 {
			cert = time.Date(2018+r.IntN(8), time.Month(1+r.IntN(12)), 1+r.IntN(28), 0, 0, 0, 0, Shanghai)
			if cert.After(w.Epoch) {
				cert = time.Time{}
			}
		}
		sh.add(fmt.Sprintf("S%03d", i+1), w.updated(), fmt.Sprintf("%s应急避难场所%d", streetRoad(r), i+1), kind, level,
			int(area/2), math.Round(area), day(cert), streetRoad(r), lon, lat, w.Cells[ci].Street)
	}
	w.Tables["shelters"] = sh
	// three supply warehouses: north, centre, south thirds of the area
	wh := &Table{Name: "supply_warehouses", Cols: []string{"id", "updated_at", "name", "zone", "capacity_people", "floor_area_m2", "address", "longitude", "latitude", "street_code"}}
	sorted := make([]int, len(w.Cells))
	for i := range sorted {
		sorted[i] = i
	}
	sort.Slice(sorted, func(a, b int) bool {
		return w.Cells[sorted[a]].Lat > w.Cells[sorted[b]].Lat || w.Cells[sorted[a]].Lat == w.Cells[sorted[b]].Lat && sorted[a] < sorted[b]
	})
	pop := 0
	for _, c := range w.communities {
		pop += c.population
	}
	zones := []struct{ en, zh string }{{"north", "北部"}, {"centre", "中部"}, {"south", "南部"}}
	for k := 0; k < 3*w.Cfg.Scale; k++ {
		z := k % 3
		third := len(sorted) / 3
		ci := sorted[z*third+r.IntN(third)]
		lon, lat := w.randomPoint(r, ci)
		// together they relieve a little over 1 % of the population
		capPeople := int(float64(pop) * (0.0034 + 0.0006*r.Float64()) / float64(w.Cfg.Scale))
		wh.add(fmt.Sprintf("W%02d", k+1), w.updated(), fmt.Sprintf("西城区%s应急物资储备库", zones[z].zh), zones[z].en, capPeople,
			math.Round(1500+r.Float64()*2500), streetRoad(r), lon, lat, w.Cells[ci].Street)
	}
	w.Tables["supply_warehouses"] = wh
	// fire stations: small ones spread by street, micro ones per community
	fs := &Table{Name: "fire_stations", Cols: []string{"id", "updated_at", "name", "kind", "staff", "address", "longitude", "latitude", "street_code", "community_code"}}
	small := w.scaled(w.Cfg.Counts.SmallFireStations)
	for i := 0; i < small; i++ {
		s := w.Streets[i%len(w.Streets)]
		ci := w.pointInStreet(r, s.Code)
		lon, lat := w.randomPoint(r, ci)
		fs.add(fmt.Sprintf("F%04d", i+1), w.updated(), fmt.Sprintf("%s小型消防站%d", s.NameZH, i/len(w.Streets)+1), "small", 8+r.IntN(8),
			streetRoad(r), lon, lat, s.Code, w.Cells[ci].Community)
	}
	micro := w.scaled(w.Cfg.Counts.MicroFireStations)
	for i := 0; i < micro; i++ {
		cm := w.communities[i%len(w.communities)]
		ci := cm.cells[r.IntN(len(cm.cells))]
		lon, lat := w.randomPoint(r, ci)
		fs.add(fmt.Sprintf("F%04d", small+i+1), w.updated(), fmt.Sprintf("微型消防站%s-%d", cm.code, i/len(w.communities)+1), "micro", 3+r.IntN(4),
			streetRoad(r), lon, lat, cm.street, cm.code)
	}
	w.Tables["fire_stations"] = fs
	// e-bike charging: most communities have some, a few not yet
	cp := &Table{Name: "charging_points", Cols: []string{"id", "updated_at", "community_code", "street_code", "ports", "opened_on", "longitude", "latitude"}}
	seq := 0
	for _, cm := range w.communities {
		k := r.IntN(w.Cfg.Counts.ChargingPerCommunity*2 + 1)
		if r.Float64() < 0.04 {
			k = 0
		}
		for j := 0; j < k; j++ {
			seq++
			ci := cm.cells[r.IntN(len(cm.cells))]
			lon, lat := w.randomPoint(r, ci)
			opened := w.Epoch.AddDate(0, 0, -r.IntN(5*365))
			cp.add(fmt.Sprintf("C%05d", seq), w.updated(), cm.code, cm.street, 10+r.IntN(31), day(opened), lon, lat)
		}
	}
	w.Tables["charging_points"] = cp
}

func (w *World) genWater() {
	r := rng(w.Cfg.Seed, "water")
	wp := &Table{Name: "waterlogging_points", Cols: []string{"id", "updated_at", "name", "kind", "warn_depth_m", "sensor_id", "street_code", "longitude", "latitude"}}
	ws := &Table{Name: "water_sensors", Cols: []string{"sensor_id", "updated_at", "kind", "unit", "site_kind", "topic", "normal_min", "normal_max", "waterlogging_point_id", "street_code", "longitude", "latitude"}}
	prefix := w.Cfg.MQTT.TopicPrefix
	n := w.scaled(w.Cfg.Counts.WaterloggingPoints)
	kinds := []string{"low_courtyard", "underpass", "road_dip"}
	kindZH := map[string]string{"low_courtyard": "低洼院落", "underpass": "下凹桥区", "road_dip": "道路低点"}
	for i := 0; i < n; i++ {
		ci := r.IntN(len(w.Cells))
		lon, lat := w.randomPoint(r, ci)
		kind := kinds[pick(r, []float64{5, 2, 3})]
		id := fmt.Sprintf("WP%03d", i+1)
		sid := fmt.Sprintf("WL%03d", i+1)
		site := "low_point"
		if kind == "underpass" {
			site = "underpass"
		}
		warn := 0.15
		if kind == "underpass" {
			warn = 0.27
		}
		wp.add(id, w.updated(), fmt.Sprintf("%s%s%d", streetRoad(r), kindZH[kind], i+1), kind, warn, sid, w.Cells[ci].Street, lon, lat)
		w.Sensors = append(w.Sensors, Sensor{ID: sid, Kind: "water_level", Unit: "m", SiteKind: site, Lon: lon, Lat: lat, Street: w.Cells[ci].Street,
			Base: 0, NormalMin: 0, NormalMax: warn, Point: id})
	}
	np := w.scaled(w.Cfg.Counts.PipeSensors)
	for i := 0; i < np; i++ {
		ci := r.IntN(len(w.Cells))
		lon, lat := w.randomPoint(r, ci)
		s := Sensor{Lon: lon, Lat: lat, Street: w.Cells[ci].Street, SiteKind: "pipe"}
		switch k := i % 9; {
		case k < 5:
			s.ID, s.Kind, s.Unit = fmt.Sprintf("PP%03d", i+1), "pressure", "MPa"
			s.Base = 0.28 + 0.06*r.Float64()
			s.NormalMin, s.NormalMax = 0.18, 0.45
		case k < 8:
			s.ID, s.Kind, s.Unit = fmt.Sprintf("PF%03d", i+1), "flow", "m³/h"
			s.Base = 80 + 300*r.Float64()
			s.NormalMin, s.NormalMax = 0, math.Round(s.Base*2.2)
		default:
			s.ID, s.Kind, s.Unit = fmt.Sprintf("PG%03d", i+1), "gas", "%LEL"
			s.Base = 0.5 * r.Float64()
			s.NormalMin, s.NormalMax = 0, 10
			s.SiteKind = "other"
		}
		if i%20 == 7 {
			s.SiteKind = "pump_station"
		}
		w.Sensors = append(w.Sensors, s)
	}
	for _, s := range w.Sensors {
		ws.add(s.ID, w.updated(), s.Kind, s.Unit, s.SiteKind, prefix+"/"+s.ID, s.NormalMin, s.NormalMax, s.Point, s.Street, s.Lon, s.Lat)
	}
	w.Tables["waterlogging_points"] = wp
	w.Tables["water_sensors"] = ws
}

func (w *World) genSegments() {
	r := rng(w.Cfg.Seed, "segments")
	n := w.scaled(w.Cfg.Counts.TrafficSegments)
	for i := 0; i < n; i++ {
		road := roads[i%len(roads)]
		ci := r.IntN(len(w.Cells))
		ff := []float64{40, 50, 60, 70}[r.IntN(4)]
		if road == "西长安街" || road == "复兴门内大街" {
			ff = 70
		}
		w.Segments = append(w.Segments, Segment{ID: fmt.Sprintf("RS%04d", i+1), Road: fmt.Sprintf("%s第%d段", road, i/len(roads)+1),
			Street: w.Cells[ci].Street, FreeFlow: ff, Lanes: 2 + r.IntN(3)})
	}
}

func (w *World) genPlans() {
	r := rng(w.Cfg.Seed, "plans")
	ep := &Table{Name: "emergency_plans", Cols: []string{"plan_id", "revision", "revised_at", "title_zh", "title_en", "owner_kind", "owner_id", "owner_name", "hazard_kind", "digitized", "platform_id"}}
	dr := &Table{Name: "drills", Cols: []string{"id", "held_at", "kind", "owner_kind", "owner_id", "enterprise_id", "plan_id", "participants", "street_code"}}
	const platform = "XC-EPP-1"
	year := w.Epoch.Year()
	plan := func(id, zh, en, kind, owner, ownerName, hazard string, digitizedP float64, reviseP float64) {
		issued := time.Date(2016+r.IntN(5), time.Month(1+r.IntN(12)), 1+r.IntN(28), 9, 0, 0, 0, Shanghai)
		dig := r.Float64() < digitizedP
		ep.add(id, 1, issued, zh, en, kind, owner, ownerName, hazard, dig, map[bool]string{true: platform, false: ""}[dig])
		rev := 1
		for y := 2021; y <= year; y++ {
			if r.Float64() < reviseP {
				at := time.Date(y, time.Month(1+r.IntN(12)), 1+r.IntN(28), 9, 0, 0, 0, Shanghai)
				if at.After(w.Epoch) {
					continue
				}
				rev++
				ep.add(id, rev, at, zh, en, kind, owner, ownerName, hazard, dig || r.Float64() < 0.5, platform)
			}
		}
	}
	dseq := 0
	drill := func(kind, ownerKind, owner, ent, planID, street string, at time.Time, people int) {
		dseq++
		dr.add(fmt.Sprintf("D%07d", dseq), at, kind, ownerKind, owner, ent, planID, people, street)
	}
	when := func(y int) time.Time {
		t := time.Date(y, time.Month(1+r.IntN(12)), 1+r.IntN(28), 9+r.IntN(8), 0, 0, 0, Shanghai)
		if t.After(w.Epoch) {
			t = w.Epoch.AddDate(0, 0, -1-r.IntN(60))
		}
		return t
	}
	years := []int{year - 1, year}
	for i := 0; i < w.Cfg.Counts.SpecialHQs; i++ {
		hq := specialHQs[i%len(specialHQs)]
		id := fmt.Sprintf("HQ%02d", i+1)
		pid := "P-" + id
		plan(pid, "西城区"+hq.zh+"专项应急预案", "Xicheng "+hq.en+" special emergency plan", "hq", id, hq.zh, hq.en, 0.9, 0.35)
		for _, y := range years {
			if r.Float64() < 0.85 {
				drill("plan_training", "hq", id, "", pid, "", when(y), 30+r.IntN(80))
			}
			drill("drill", "hq", id, "", pid, "", when(y), 50+r.IntN(300))
		}
	}
	for _, s := range w.Streets {
		pid := "P-" + s.Code
		plan(pid, s.NameZH+"突发事件总体应急预案", s.NameEN+" general emergency plan", "street", s.Code, s.NameZH, "general", 0.9, 0.3)
		for _, y := range years {
			if r.Float64() < 0.8 {
				drill("plan_training", "street", s.Code, "", pid, s.Code, when(y), 20+r.IntN(60))
			}
			drill("drill", "street", s.Code, "", pid, s.Code, when(y), 40+r.IntN(200))
		}
	}
	for _, u := range w.Units {
		if !u.Risk {
			continue
		}
		pid := "P-" + u.ID
		plan(pid, "单位生产安全事故应急预案", "Unit work-safety emergency plan", "unit", u.ID, "", "work_safety", 0.6, 0.2)
		for _, y := range years {
			if r.Float64() < 0.75 {
				drill("drill", "unit", u.ID, u.ID, pid, u.Street, when(y), 5+r.IntN(40))
			}
			for k := r.IntN(4); k > 0; k-- {
				drill("skill_training", "unit", u.ID, u.ID, pid, u.Street, when(y), 5+r.IntN(30))
			}
		}
	}
	sort.SliceStable(dr.Rows, func(a, b int) bool { return dr.Rows[a][1] < dr.Rows[b][1] })
	w.Tables["emergency_plans"] = ep
	w.Tables["drills"] = dr
}
