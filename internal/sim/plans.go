package sim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"time"
)

// Plans as data (issue #24, docs/response.md): the response levels of the
// overall district plan, the special command HQs' plans and the streets'
// plans (plan_levels), three roles per level with their duties
// (plan_roles), and who holds each role with a deputy (role_holders).
// raw.emergency_plans and raw.drills (genPlans) are left as they are.

// OverallPlanID is the district's overall emergency plan (西城区突发事件总体应急预案).
const OverallPlanID = "P-XC"

// responseLevels are the response levels, most severe first.
var responseLevels = []string{"I", "II", "III", "IV"}

// levelZH is how Chinese texts write a level.
var levelZH = map[string]string{"I": "Ⅰ级", "II": "Ⅱ级", "III": "Ⅲ级", "IV": "Ⅳ级"}

// hqTrigger says what activates a special HQ's plan, parallel to
// specialHQs: a warning kind (one per HQ: a level is one row per plan and
// level), an incident category of raw.incidents, both or neither (then
// the HQ decides).
type hqTrigger struct {
	hazardZH, hazardEN string
	warning, incident  string
}

var hqTriggers = []hqTrigger{
	{"汛情和城市内涝", "floods and urban waterlogging", "waterlogging", ""},
	{"生产安全事故", "work-safety accidents", "", ""},
	{"火灾事故", "fires", "", "fire"},
	{"地震灾害", "earthquakes", "", ""},
	{"突发公共卫生事件", "public health emergencies", "", "medical"},
	{"道路交通事故和严重拥堵", "road accidents and severe congestion", "traffic", "traffic"},
	{"大型活动人员聚集风险", "crowding at large events", "crowd", ""},
	{"暴雨等极端天气", "rainstorms and other extreme weather", "rainstorm", ""},
	{"能源供应中断", "energy supply disruptions", "lifeline", ""},
	{"供水管网事故", "water-main failures", "lifeline", ""},
	{"燃气泄漏事故", "gas leaks", "lifeline", ""},
	{"社会安全事件", "public security incidents", "", "police"},
}

var warningKindZH = map[string]string{"crowd": "大客流", "rainstorm": "暴雨", "waterlogging": "内涝积水", "lifeline": "城市生命线", "traffic": "交通拥堵"}
var warningLevelZH = map[string]string{"blue": "蓝色", "yellow": "黄色", "orange": "橙色", "red": "红色"}
var incidentZH = map[string]string{"fire": "119 火警", "medical": "120 医疗", "traffic": "122 交通事故", "police": "110 治安"}

// planRevisions are clauses a revision of a plan level adds to its condition.
var planRevisions = []struct{ zh, en string }{
	{"涉及学校、医院、养老机构等重点场所时直接启动本级响应", "start this level at once when schools, hospitals or care homes are affected"},
	{"夜间及法定节假日期间提前一级做好启动准备", "at night and on public holidays, prepare to start one level earlier"},
	{"预警解除后继续值守 2 小时方可终止响应", "keep watch for 2 h after the warning is cleared before ending the response"},
	{"启动后同步通报相邻街道和相关专项指挥部", "on activation, inform the neighbouring streets and the special HQs concerned"},
}

type planLevelSpec struct {
	level, warning, minWarning, incident string
	condZH, condEN                       string
}

type planSpec struct {
	id, parent, kind, titleZH, titleEN, street string
	hazardZH, hazardEN                         string
	levels                                     []planLevelSpec // two, most severe first
}

// responsePlans lists the plans with their levels: the overall plan, the
// special HQs' and the streets'.
func (w *World) responsePlans() []planSpec {
	plans := []planSpec{{id: OverallPlanID, kind: "overall", titleZH: "西城区突发事件总体应急预案", titleEN: "Xicheng District overall emergency plan",
		levels: []planLevelSpec{
			{level: "I", minWarning: "red",
				condZH: "发生特别重大突发事件，或全区范围内发布红色预警且事态超出区级处置能力，由区应急委启动Ⅰ级响应",
				condEN: "An especially major emergency, or a red warning anywhere in the district beyond the district's own means: the district emergency committee starts level I"},
			{level: "II", minWarning: "orange",
				condZH: "发生重大突发事件，或发布橙色及以上预警，涉及两个及以上街道或需多个专项指挥部协同处置",
				condEN: "A major emergency, or an orange or higher warning affecting two or more streets or needing several special HQs"},
		}}}
	for i := 0; i < w.Cfg.Counts.SpecialHQs; i++ {
		hq := specialHQs[i%len(specialHQs)]
		tr := hqTriggers[i%len(hqTriggers)]
		p := planSpec{id: fmt.Sprintf("P-HQ%02d", i+1), parent: OverallPlanID, kind: "hq",
			titleZH: "西城区" + hq.zh + "专项应急预案", titleEN: "Xicheng " + hq.en + " special emergency plan",
			hazardZH: tr.hazardZH, hazardEN: tr.hazardEN}
		for _, lv := range []struct{ level, warn, sizeZH, sizeEN string }{{"II", "orange", "重大", "major"}, {"III", "yellow", "较大", "serious"}} {
			l := planLevelSpec{level: lv.level}
			var zh, en []string
			if tr.warning != "" {
				l.warning, l.minWarning = tr.warning, lv.warn
				zh = append(zh, fmt.Sprintf("发布%s%s及以上预警", warningKindZH[tr.warning], warningLevelZH[lv.warn]))
				en = append(en, fmt.Sprintf("%s %s or higher %s warning", map[bool]string{true: "an", false: "a"}[lv.warn == "orange"], lv.warn, tr.warning))
			}
			if tr.incident != "" && lv.level == "III" {
				l.incident = tr.incident
				zh = append(zh, fmt.Sprintf("接报%s警情且经核实需专业处置", incidentZH[tr.incident]))
				en = append(en, fmt.Sprintf("a %s incident call that needs specialist response once checked", tr.incident))
			}
			zh = append(zh, fmt.Sprintf("发生%s%s", lv.sizeZH, tr.hazardZH))
			en = append(en, fmt.Sprintf("%s %s", lv.sizeEN, tr.hazardEN))
			l.condZH = strings.Join(zh, "，或") + fmt.Sprintf("，由%s启动%s响应", hq.zh, levelZH[lv.level])
			l.condEN = upperFirst(strings.Join(en, ", or ")) + fmt.Sprintf(": the %s starts level %s", hq.en, lv.level)
			p.levels = append(p.levels, l)
		}
		plans = append(plans, p)
	}
	for _, s := range w.Streets {
		plans = append(plans, planSpec{id: "P-" + s.Code, parent: OverallPlanID, kind: "street", street: s.Code,
			titleZH: s.NameZH + "突发事件总体应急预案", titleEN: s.NameEN + " general emergency plan",
			levels: []planLevelSpec{
				{level: "III", minWarning: "yellow",
					condZH: s.NameZH + "辖区发布黄色及以上预警（大客流、暴雨、内涝、生命线、交通任一类），或发生需街道统一组织处置的突发事件",
					condEN: "A yellow or higher warning of any kind in " + s.NameEN + ", or an emergency the street must handle as a whole"},
				{level: "IV", minWarning: "blue",
					condZH: s.NameZH + "辖区发布蓝色及以上预警，或社区、网格上报险情隐患",
					condEN: "A blue or higher warning in " + s.NameEN + ", or a danger reported by a community or grid inspector"},
			}})
	}
	return plans
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// planRole is one of the three roles of every level.
type planRole struct {
	slug, en string
	rank     int
}

var planRoleKinds = []planRole{{"commander", "Commander", 1}, {"field_lead", "Field response lead", 2}, {"info_officer", "Information officer", 3}}

func roleID(plan, level, slug string) string { return "R-" + plan + "-" + level + "-" + slug }

// roleName is the Chinese and English name of a role at a level: the
// commander of a level I or II response is 总指挥, of III or IV 带班领导.
func roleName(kind planRole, level string) (string, string) {
	switch kind.slug {
	case "commander":
		if level == "I" || level == "II" {
			return "总指挥", "Commander"
		}
		return "带班领导", "Duty leader"
	case "field_lead":
		return "现场处置组长", kind.en
	}
	return "信息报送员", kind.en
}

// duty is what a role does at a level of a plan.
func duty(p planSpec, level, slug string) (string, string) {
	h, he := p.hazardZH, p.hazardEN
	switch p.kind + "/" + level + "/" + slug {
	case "overall/I/commander":
		return "区委、区政府主要负责同志任总指挥，区应急委统一领导全区应对工作；决定启动Ⅰ级响应，统一调度全区应急队伍、物资和装备，必要时提请市应急委支援，依法采取交通管制、停工停课、人员疏散等措施。",
			"The district's party secretary and mayor command, the district emergency committee leads: they start level I, deploy every district team, supply and piece of equipment, ask the city for support when needed and order traffic control, closures and evacuations as the law allows."
	case "overall/II/commander":
		return "区政府分管副区长任总指挥，组织相关专项指挥部和街道开展处置；调度区级应急队伍和物资，决定发布预警信息和采取临时管控措施，及时向区委、区政府报告并提出升级建议。",
			"The deputy district mayor in charge commands the special HQs and streets concerned, deploys district teams and supplies, decides on public warnings and temporary controls, and reports to the district leadership with a proposal to escalate when needed."
	case "overall/I/field_lead":
		return "任现场指挥部处置组长，统筹公安、消防、卫健、城管等力量开展抢险救援、人员疏散和医疗救治，划定警戒区域，实施现场管控。",
			"Leads the field command's response group: coordinates police, fire, health and city-management forces in rescue, evacuation and medical care, sets the cordon and controls the site."
	case "overall/II/field_lead":
		return "率区应急管理局工作组赶赴现场，协调专业救援队伍开展先期处置，组织转移受威胁群众，核实灾情并提出处置建议。",
			"Takes the district emergency bureau's team to the site, coordinates the specialist rescue teams' first response, moves people at risk, checks the damage and proposes measures."
	case "overall/I/info_officer":
		return "负责全区信息汇总报送，事发后 30 分钟内电话、1 小时内书面向市应急管理局报告，每 30 分钟续报处置进展，配合统一发布权威信息。",
			"Collects and reports district-wide information: to the city emergency bureau by phone within 30 min and in writing within 1 h, updates every 30 min, supports the official releases."
	case "overall/II/info_officer":
		return "负责收集核实事件信息，1 小时内书面报区应急委，每小时续报事态发展和处置情况。",
			"Collects and checks the information, reports in writing to the district emergency committee within 1 h and updates hourly."
	case "hq/II/commander":
		return "分管副区长任指挥部总指挥，启动本专项Ⅱ级响应，统一指挥各成员单位开展" + h + "应对，调度专业救援队伍和物资，向区应急委报告并提出升级建议。",
			"The deputy mayor in charge commands the HQ: starts level II of this plan, directs the member units against " + he + ", deploys specialist teams and supplies, reports to the district emergency committee and proposes escalation when needed."
	case "hq/III/commander":
		return "指挥部办公室主任（牵头部门主要负责同志）带班，组织成员单位会商研判" + h + "态势，部署防范应对措施，督促相关街道落实先期处置。",
			"The HQ office director (head of the lead department) is on duty: has the member units assess " + he + ", orders preventive measures and sees that the streets concerned respond first."
	case "hq/II/field_lead":
		return "带领专业处置队伍赶赴现场，组织抢险救援和工程抢修，设置警戒区域，防止次生、衍生灾害。",
			"Takes the specialist teams to the site, runs rescue and emergency repairs, sets the cordon and prevents secondary disasters."
	case "hq/III/field_lead":
		return "组织成员单位巡查重点部位，调派值守力量前置备勤，指导街道开展先期处置。",
			"Has the member units patrol key sites, pre-positions stand-by teams and guides the streets' first response."
	case "hq/II/info_officer":
		return "30 分钟内向区应急委电话报告、1 小时内书面报告，每小时续报" + h + "处置进展。",
			"Reports to the district emergency committee by phone within 30 min and in writing within 1 h, then on the response to " + he + " hourly."
	case "hq/III/info_officer":
		return "汇总成员单位和街道报送的信息，1 小时内报指挥部办公室，每 2 小时续报。",
			"Collects the member units' and streets' reports, reports to the HQ office within 1 h and every 2 h after."
	case "street/III/commander":
		return "街道主要负责同志带班，组织疏导分流和人员转移，启动街道应急分队和社区网格力量，开放应急避难场所，30 分钟内向区应急管理局报告。",
			"The street's head is on duty: organizes crowd control and evacuation, calls out the street's emergency squad and the community grid staff, opens shelters and reports to the district emergency bureau within 30 min."
	case "street/IV/commander":
		return "街道分管负责同志带班，组织社区加强巡查值守，提示居民做好防范，排查隐患点位，做好队伍和物资准备。",
			"The street's deputy head in charge is on duty: has the communities step up patrols, advises residents, checks hazard spots and readies teams and supplies."
	case "street/III/field_lead":
		return "带领街道应急分队赶赴现场，设置警戒，组织人员疏散和先期处置，配合专业队伍抢险。",
			"Takes the street's emergency squad to the site, sets a cordon, evacuates people, starts the first response and assists the specialist teams."
	case "street/IV/field_lead":
		return "组织社区、物业人员巡查积水点、人员密集场所和隐患部位，发现险情立即先期处置并报告带班领导。",
			"Has community and property staff patrol low points, crowded places and hazards; acts at once on a danger and reports it to the duty leader."
	case "street/III/info_officer":
		return "险情发生后 15 分钟内电话、30 分钟内书面报区应急管理局，每小时续报处置进展。",
			"Reports to the district emergency bureau by phone within 15 min and in writing within 30 min, then hourly."
	case "street/IV/info_officer":
		return "汇总社区网格巡查信息，每日定时报送，发现异常及时报告带班领导。",
			"Collects the grid patrols' reports, sends a daily summary and reports anything unusual to the duty leader at once."
	}
	return "按本预案" + levelZH[level] + "响应要求履行岗位职责。", "Carries out the role's duties under level " + level + " of this plan."
}

// superiorRole is the commander a role escalates to: that of the next more
// severe level of the same plan, else of the nearest ancestor plan's least
// severe level above this one; empty at the top.
func superiorRole(plans map[string]planSpec, plan, level string) string {
	li := slices.Index(responseLevels, level)
	for p, ok := plans[plan]; ok; p, ok = plans[p.parent] {
		best := ""
		for _, l := range p.levels {
			if i := slices.Index(responseLevels, l.level); i < li && (best == "" || i > slices.Index(responseLevels, best)) {
				best = l.level
			}
		}
		if best != "" {
			return roleID(p.id, best, "commander")
		}
	}
	return ""
}

// person is someone who holds or deputizes for plan roles.
type person struct {
	id, name, street, mobile, email, channels string
}

var mobilePrefixes = []string{"130", "131", "133", "135", "136", "137", "138", "139", "150", "151", "158", "177", "186", "189"}

// genPlansAsData writes plan_levels, plan_roles and role_holders.
func (w *World) genPlansAsData() {
	first := time.Date(2021, 1, 1, 9, 0, 0, 0, Shanghai)
	if first.After(w.Epoch) {
		first = w.Epoch
	}
	// a day at 09:00 between first (exclusive) and the epoch, within the last `days` days
	dayBefore := func(r *rand.Rand, days int) (time.Time, bool) {
		d := w.Epoch.AddDate(0, 0, -1-r.IntN(days))
		t := time.Date(d.Year(), d.Month(), d.Day(), 9, 0, 0, 0, Shanghai)
		return t, t.After(first) && !t.After(w.Epoch)
	}
	plans := w.responsePlans()
	byID := map[string]planSpec{}
	for _, p := range plans {
		byID[p.id] = p
	}

	r := rng(w.Cfg.Seed, "plan_levels")
	pl := &Table{Name: "plan_levels", Cols: []string{"plan_id", "parent_plan_id", "plan_kind", "plan_title_zh", "plan_title_en", "level", "warning_kind",
		"min_warning_level", "street_code", "incident_type", "condition_zh", "condition_en", "valid_from"}}
	// one level in five is revised once in the last four years
	nLevels := 0
	for _, p := range plans {
		nLevels += len(p.levels)
	}
	revised := map[int]bool{}
	for _, i := range r.Perm(nLevels)[:(nLevels+2)/5] {
		revised[i] = true
	}
	li := 0
	for _, p := range plans {
		for _, l := range p.levels {
			row := func(at time.Time, zh, en string) {
				pl.add(p.id, p.parent, p.kind, p.titleZH, p.titleEN, l.level, l.warning, l.minWarning, p.street, l.incident, zh, en, at)
			}
			row(first, l.condZH, l.condEN)
			if revised[li] {
				rev := planRevisions[r.IntN(len(planRevisions))]
				if at, ok := dayBefore(r, 4*365); ok {
					row(at, fmt.Sprintf("%s（%d 年修订：%s）", l.condZH, at.Year(), rev.zh), fmt.Sprintf("%s (revised %d: %s)", l.condEN, at.Year(), rev.en))
				}
			}
			li++
		}
	}

	ro := &Table{Name: "plan_roles", Cols: []string{"role_id", "plan_id", "level", "role_zh", "role_en", "duty_zh", "duty_en", "superior_role_id", "rank", "valid_from"}}
	for _, p := range plans {
		for _, l := range p.levels {
			for _, k := range planRoleKinds {
				zh, en := roleName(k, l.level)
				dzh, den := duty(p, l.level, k.slug)
				ro.add(roleID(p.id, l.level, k.slug), p.id, l.level, zh, en, dzh, den, superiorRole(byID, p.id, l.level), k.rank, first)
			}
		}
	}

	w.genRoleHolders(plans, first, dayBefore)
	w.Tables["plan_levels"] = pl
	w.Tables["plan_roles"] = ro
}

// genRoleHolders gives every plan seven people: the commanders of its two
// levels, a field lead and an information officer for both levels, and
// deputies (the less severe level's commander deputizes for the more
// severe one's). Posts change hands in the last year before the epoch
// until about one role in ten has a new row: every role the post's person
// held or deputized for.
func (w *World) genRoleHolders(plans []planSpec, first time.Time, dayBefore func(*rand.Rand, int) (time.Time, bool)) {
	r := rng(w.Cfg.Seed, "role_holders")
	rh := &Table{Name: "role_holders", Cols: []string{"role_id", "person_id", "person_name", "deputy_person_id", "deputy_name", "deputy_mobile", "deputy_email",
		"street_code", "mobile", "email", "channels", "valid_from"}}
	people := map[string]*person{}
	mobiles := map[string]bool{}
	newPerson := func(street, kind string) *person {
		p := &person{id: fmt.Sprintf("U%05d", len(people)+1), name: personName(r), street: street}
		for p.mobile == "" || mobiles[p.mobile] {
			p.mobile = fmt.Sprintf("%s%08d", mobilePrefixes[r.IntN(len(mobilePrefixes))], r.IntN(100_000_000))
		}
		mobiles[p.mobile] = true
		p.email = p.id + "@xicheng.example.gov.cn"
		ch := map[string][]string{"commander": {"app", "sms", "wecom"}, "field_lead": {"app", "sms", "dingtalk"}, "info_officer": {"app", "email", "wecom"}}[kind]
		switch {
		case kind == "commander" && r.Float64() < 0.2:
			ch = append(ch, "email")
		case kind == "field_lead" && r.Float64() < 0.15:
			ch = []string{"app", "sms", "wecom"}
		case kind == "info_officer" && r.Float64() < 0.15:
			ch = append(ch, "sms")
		}
		p.channels = strings.Join(ch, ",")
		people[p.id] = p
		return p
	}
	type holding struct {
		role           string
		holder, deputy *person
	}
	var all []*holding
	type post struct {
		kind  string
		holds []*holding // roles where the person is the holder
		deps  []*holding // roles where the person is the deputy
	}
	var posts []*post
	for _, p := range plans {
		hi, lo := p.levels[0].level, p.levels[1].level
		cmdHi, cmdLo := newPerson(p.street, "commander"), newPerson(p.street, "commander")
		field, info := newPerson(p.street, "field_lead"), newPerson(p.street, "info_officer")
		h := func(level, slug string, holder, deputy *person) *holding {
			x := &holding{roleID(p.id, level, slug), holder, deputy}
			all = append(all, x)
			return x
		}
		cHi := h(hi, "commander", cmdHi, cmdLo)
		cLo := h(lo, "commander", cmdLo, newPerson(p.street, "commander"))
		fHi := h(hi, "field_lead", field, newPerson(p.street, "field_lead"))
		fLo := h(lo, "field_lead", field, fHi.deputy)
		iHi := h(hi, "info_officer", info, newPerson(p.street, "info_officer"))
		iLo := h(lo, "info_officer", info, iHi.deputy)
		posts = append(posts,
			&post{kind: "commander", holds: []*holding{cHi}},
			&post{kind: "commander", holds: []*holding{cLo}, deps: []*holding{cHi}},
			&post{kind: "field_lead", holds: []*holding{fHi, fLo}},
			&post{kind: "info_officer", holds: []*holding{iHi, iLo}})
	}
	emit := func(x *holding, at time.Time) {
		d := x.deputy
		rh.add(x.role, x.holder.id, x.holder.name, d.id, d.name, d.mobile, d.email, x.holder.street, x.holder.mobile, x.holder.email, x.holder.channels, at)
	}
	for _, x := range all {
		emit(x, first)
	}
	type change struct {
		at   time.Time
		post *post
	}
	var changes []change
	for touched, i := 0, 0; touched < (len(all)+5)/10 && i < len(posts); i++ {
		p := posts[r.IntN(len(posts))]
		if slices.ContainsFunc(changes, func(c change) bool { return c.post == p }) {
			continue
		}
		if at, ok := dayBefore(r, 365); ok {
			changes = append(changes, change{at, p})
			touched += len(p.holds) + len(p.deps)
		}
	}
	sort.SliceStable(changes, func(a, b int) bool { return changes[a].at.Before(changes[b].at) })
	for i := 0; i < len(changes); {
		at := changes[i].at
		var touched []*holding
		for ; i < len(changes) && changes[i].at.Equal(at); i++ {
			p := changes[i].post
			old := p.holds[0].holder
			np := newPerson(old.street, p.kind)
			for _, x := range p.holds {
				x.holder = np
			}
			for _, x := range p.deps {
				x.deputy = np
			}
			for _, x := range append(slices.Clone(p.holds), p.deps...) {
				if !slices.Contains(touched, x) {
					touched = append(touched, x)
				}
			}
		}
		for _, x := range touched {
			emit(x, at)
		}
	}
	w.Tables["role_holders"] = rh
}
