package response

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Levels of a response, highest first: I 特别重大, II 重大, III 较大, IV 一般.
var responseLevels = map[string]int{"I": 4, "II": 3, "III": 2, "IV": 1}

// Warning levels, lowest first.
var warningLevels = map[string]int{"blue": 1, "yellow": 2, "orange": 3, "red": 4}

// PlanLevel is one response level of a plan with its activation condition
// (raw.plan_levels). A revision is a new row with a later ValidFrom.
type PlanLevel struct {
	PlanID, ParentPlanID, PlanKind string
	TitleZh, TitleEn               string
	Level                          string
	WarningKind, MinWarningLevel   string
	StreetCode, IncidentType       string
	ConditionZh, ConditionEn       string
	ValidFrom                      time.Time
}

// Role is a role of a plan's level with its duty (raw.plan_roles).
type Role struct {
	RoleID, PlanID, Level string
	RoleZh, RoleEn        string
	DutyZh, DutyEn        string
	SuperiorRoleID        string
	Rank                  int
	ValidFrom             time.Time
}

// Holder is who holds a role from ValidFrom on, with a deputy
// (raw.role_holders). A personnel change is a new row.
type Holder struct {
	RoleID                   string
	PersonID, PersonName     string
	DeputyID, DeputyName     string
	DeputyMobile, DeputyMail string
	StreetCode               string
	Mobile, Email            string
	Channels                 []string
	ValidFrom                time.Time
}

// Plans are the plans' levels, roles and holders with their history: every
// question takes the day it is asked about (time travel through ValidFrom).
type Plans struct {
	levels  map[string][]PlanLevel // plan_id|level → revisions, oldest first
	roles   map[string][]Role      // role_id → revisions
	holders map[string][]Holder    // role_id → holders, oldest first
}

// NewPlans indexes rows (any order).
func NewPlans(levels []PlanLevel, roles []Role, holders []Holder) *Plans {
	p := &Plans{levels: map[string][]PlanLevel{}, roles: map[string][]Role{}, holders: map[string][]Holder{}}
	for _, l := range levels {
		k := l.PlanID + "|" + l.Level
		p.levels[k] = append(p.levels[k], l)
	}
	for _, r := range roles {
		p.roles[r.RoleID] = append(p.roles[r.RoleID], r)
	}
	for _, h := range holders {
		p.holders[h.RoleID] = append(p.holders[h.RoleID], h)
	}
	for _, v := range p.levels {
		sort.SliceStable(v, func(i, j int) bool { return v[i].ValidFrom.Before(v[j].ValidFrom) })
	}
	for _, v := range p.roles {
		sort.SliceStable(v, func(i, j int) bool { return v[i].ValidFrom.Before(v[j].ValidFrom) })
	}
	for _, v := range p.holders {
		sort.SliceStable(v, func(i, j int) bool { return v[i].ValidFrom.Before(v[j].ValidFrom) })
	}
	return p
}

// asOf returns the newest revision valid at t.
func asOf[T any](revs []T, valid func(T) time.Time, t time.Time) (T, bool) {
	var zero T
	for i := len(revs) - 1; i >= 0; i-- {
		if !valid(revs[i]).After(t) {
			return revs[i], true
		}
	}
	return zero, false
}

// Empty says whether no plan level is known (the tables not ingested yet).
func (p *Plans) Empty() bool { return p == nil || len(p.levels) == 0 }

var planSpecificity = map[string]int{"street": 3, "unit": 3, "hq": 2, "overall": 1}

// Resolve returns the plan level a warning of kind and level in street
// activates at t: among the levels whose condition it meets (kind, minimum
// warning level, area), the highest response level; of equal levels, the
// most specific plan (street before special HQ before overall), then the
// plan id. False when none applies.
func (p *Plans) Resolve(kind, level, street string, t time.Time) (PlanLevel, bool) {
	var best PlanLevel
	found := false
	wl := warningLevels[level]
	for _, revs := range p.levels {
		l, ok := asOf(revs, func(l PlanLevel) time.Time { return l.ValidFrom }, t)
		if !ok || l.MinWarningLevel == "" || warningLevels[l.MinWarningLevel] > wl {
			continue
		}
		if l.WarningKind != "" && l.WarningKind != kind {
			continue
		}
		if l.StreetCode != "" && l.StreetCode != street {
			continue
		}
		if !found || better(l, best) {
			best, found = l, true
		}
	}
	return best, found
}

func better(a, b PlanLevel) bool {
	if responseLevels[a.Level] != responseLevels[b.Level] {
		return responseLevels[a.Level] > responseLevels[b.Level]
	}
	if planSpecificity[a.PlanKind] != planSpecificity[b.PlanKind] {
		return planSpecificity[a.PlanKind] > planSpecificity[b.PlanKind]
	}
	return a.PlanID < b.PlanID
}

// Roles returns the roles of a plan's level valid at t, by rank.
func (p *Plans) Roles(planID, level string, t time.Time) []Role {
	var out []Role
	for _, revs := range p.roles {
		r, ok := asOf(revs, func(r Role) time.Time { return r.ValidFrom }, t)
		if ok && r.PlanID == planID && r.Level == level {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Rank != out[j].Rank {
			return out[i].Rank < out[j].Rank
		}
		return out[i].RoleID < out[j].RoleID
	})
	return out
}

// Role returns a role as it was at t.
func (p *Plans) Role(roleID string, t time.Time) (Role, bool) {
	return asOf(p.roles[roleID], func(r Role) time.Time { return r.ValidFrom }, t)
}

// HolderAt returns who held a role at t.
func (p *Plans) HolderAt(roleID string, t time.Time) (Holder, bool) {
	return asOf(p.holders[roleID], func(h Holder) time.Time { return h.ValidFrom }, t)
}

// Person is what the response service knows of a person: from the roles
// they or their deputies hold at t.
type Person struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	Mobile     string   `json:"mobile,omitempty"`
	Email      string   `json:"email,omitempty"`
	StreetCode string   `json:"street_code,omitempty"`
	Channels   []string `json:"channels"`
}

// PersonAt finds a person (as holder or as deputy) at t.
func (p *Plans) PersonAt(id string, t time.Time) (Person, bool) {
	var dep Person
	depFound := false
	ids := make([]string, 0, len(p.holders))
	for k := range p.holders {
		ids = append(ids, k)
	}
	sort.Strings(ids)
	for _, rid := range ids {
		h, ok := p.HolderAt(rid, t)
		if !ok {
			continue
		}
		if h.PersonID == id {
			return Person{ID: id, Name: h.PersonName, Mobile: h.Mobile, Email: h.Email, StreetCode: h.StreetCode, Channels: h.Channels}, true
		}
		if h.DeputyID == id && !depFound {
			dep, depFound = Person{ID: id, Name: h.DeputyName, Mobile: h.DeputyMobile, Email: h.DeputyMail, StreetCode: h.StreetCode,
				Channels: []string{"app", "sms"}}, true
		}
	}
	return dep, depFound
}

// LoadPlans reads raw.plan_levels, raw.plan_roles and raw.role_holders with
// query (the warehouse engine's). A table not ingested yet is an error that
// names it.
func LoadPlans(ctx context.Context, query func(ctx context.Context, q string, args ...any) (*sql.Rows, error)) (*Plans, error) {
	var levels []PlanLevel
	var roles []Role
	var holders []Holder
	type scan struct {
		table string
		q     string
		row   func(*sql.Rows) error
	}
	str := func(s sql.NullString) string { return s.String }
	steps := []scan{
		{"raw.plan_levels", `SELECT plan_id, parent_plan_id, plan_kind, plan_title_zh, plan_title_en, level, warning_kind, min_warning_level,
			street_code, incident_type, condition_zh, condition_en, valid_from FROM raw.plan_levels`, func(r *sql.Rows) error {
			var v [12]sql.NullString
			var l PlanLevel
			if err := r.Scan(&v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10], &v[11], &l.ValidFrom); err != nil {
				return err
			}
			l.PlanID, l.ParentPlanID, l.PlanKind, l.TitleZh, l.TitleEn, l.Level = str(v[0]), str(v[1]), str(v[2]), str(v[3]), str(v[4]), str(v[5])
			l.WarningKind, l.MinWarningLevel, l.StreetCode, l.IncidentType, l.ConditionZh, l.ConditionEn = str(v[6]), str(v[7]), str(v[8]), str(v[9]), str(v[10]), str(v[11])
			levels = append(levels, l)
			return nil
		}},
		{"raw.plan_roles", `SELECT role_id, plan_id, level, role_zh, role_en, duty_zh, duty_en, superior_role_id, coalesce(rank, 9), valid_from FROM raw.plan_roles`, func(r *sql.Rows) error {
			var v [8]sql.NullString
			var x Role
			if err := r.Scan(&v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &x.Rank, &x.ValidFrom); err != nil {
				return err
			}
			x.RoleID, x.PlanID, x.Level, x.RoleZh, x.RoleEn, x.DutyZh, x.DutyEn, x.SuperiorRoleID = str(v[0]), str(v[1]), str(v[2]), str(v[3]), str(v[4]), str(v[5]), str(v[6]), str(v[7])
			roles = append(roles, x)
			return nil
		}},
		{"raw.role_holders", `SELECT role_id, person_id, person_name, deputy_person_id, deputy_name, deputy_mobile, deputy_email, street_code, mobile, email, channels, valid_from FROM raw.role_holders`, func(r *sql.Rows) error {
			var v [11]sql.NullString
			var h Holder
			if err := r.Scan(&v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10], &h.ValidFrom); err != nil {
				return err
			}
			h.RoleID, h.PersonID, h.PersonName, h.DeputyID, h.DeputyName, h.DeputyMobile, h.DeputyMail = str(v[0]), str(v[1]), str(v[2]), str(v[3]), str(v[4]), str(v[5]), str(v[6])
			h.StreetCode, h.Mobile, h.Email = str(v[7]), str(v[8]), str(v[9])
			for _, c := range strings.Split(str(v[10]), ",") {
				if c = strings.TrimSpace(c); c != "" {
					h.Channels = append(h.Channels, c)
				}
			}
			holders = append(holders, h)
			return nil
		}},
	}
	for _, s := range steps {
		rows, err := query(ctx, s.q)
		if err != nil {
			return nil, fmt.Errorf("读取 %s 失败（预案数据未导入？）/ read %s (plans not ingested yet?): %w", s.table, s.table, err)
		}
		for rows.Next() {
			if err := s.row(rows); err != nil {
				rows.Close()
				return nil, fmt.Errorf("%s: %w", s.table, err)
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.table, err)
		}
	}
	return NewPlans(levels, roles, holders), nil
}

// FirstStreetLevel returns the holders of the commander (rank 1) and the
// next role (rank 2) of the first street plan's given level at t (the demo
// accounts).
func (p *Plans) FirstStreetLevel(level string, t time.Time) (cmd, second Holder, ok bool) {
	var ids []string
	for k, revs := range p.levels {
		if l, found := asOf(revs, func(l PlanLevel) time.Time { return l.ValidFrom }, t); found && l.PlanKind == "street" && l.Level == level {
			ids = append(ids, k)
		}
	}
	if len(ids) == 0 {
		return cmd, second, false
	}
	sort.Strings(ids)
	planID := strings.SplitN(ids[0], "|", 2)[0]
	roles := p.Roles(planID, level, t)
	if len(roles) < 2 {
		return cmd, second, false
	}
	cmd, ok1 := p.HolderAt(roles[0].RoleID, t)
	second, ok2 := p.HolderAt(roles[1].RoleID, t)
	return cmd, second, ok1 && ok2
}

// ResolveIncident returns the plan level that incidents of category in
// street activate at t: the levels naming the category (and the street, or
// none), highest level first, then the most specific plan.
func (p *Plans) ResolveIncident(category, street string, t time.Time) (PlanLevel, bool) {
	var best PlanLevel
	found := false
	for _, revs := range p.levels {
		l, ok := asOf(revs, func(l PlanLevel) time.Time { return l.ValidFrom }, t)
		if !ok || l.IncidentType == "" || l.IncidentType != category || (l.StreetCode != "" && l.StreetCode != street) {
			continue
		}
		if !found || better(l, best) {
			best, found = l, true
		}
	}
	return best, found
}
