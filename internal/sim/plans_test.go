package sim

import (
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// tableRows gives a table's rows as maps from column to value.
func tableRows(t *testing.T, w *World, name string) []map[string]string {
	t.Helper()
	tb, ok := w.Tables[name]
	if !ok {
		t.Fatalf("no table %s", name)
	}
	out := make([]map[string]string, len(tb.Rows))
	for i, r := range tb.Rows {
		m := map[string]string{}
		for j, c := range tb.Cols {
			m[c] = r[j]
		}
		out[i] = m
	}
	return out
}

// asOf is the row of role whose valid_from is the newest not after at (nil: none).
func asOf(t *testing.T, holders []map[string]string, role string, at time.Time) map[string]string {
	t.Helper()
	var best map[string]string
	var bestAt time.Time
	for _, h := range holders {
		if h["role_id"] != role {
			continue
		}
		from, err := time.Parse(time.RFC3339, h["valid_from"])
		if err != nil {
			t.Fatalf("role %s: valid_from %q: %v", role, h["valid_from"], err)
		}
		if !from.After(at) && (best == nil || from.After(bestAt)) {
			best, bestAt = h, from
		}
	}
	return best
}

func TestPlansAsData(t *testing.T) {
	w, err := NewWorld(testConfig(), testUntil.AddDate(0, 0, -7))
	if err != nil {
		t.Fatal(err)
	}
	levels := tableRows(t, w, "plan_levels")
	roles := tableRows(t, w, "plan_roles")
	holders := tableRows(t, w, "role_holders")

	// plan levels: 2 overall + 2 per HQ + 2 per street, some revised; every parent is a plan
	plans := map[string]bool{}
	planLevels := map[string]int{}
	kinds := map[string]map[string]bool{}
	for _, l := range levels {
		plans[l["plan_id"]] = true
		planLevels[l["plan_id"]+"/"+l["level"]]++
		if kinds[l["plan_kind"]] == nil {
			kinds[l["plan_kind"]] = map[string]bool{}
		}
		kinds[l["plan_kind"]][l["plan_id"]] = true
	}
	if len(kinds["overall"]) != 1 || len(kinds["hq"]) != w.Cfg.Counts.SpecialHQs || len(kinds["street"]) != len(w.Streets) {
		t.Errorf("plans: %d overall, %d hq, %d street", len(kinds["overall"]), len(kinds["hq"]), len(kinds["street"]))
	}
	want := 2 * (1 + w.Cfg.Counts.SpecialHQs + len(w.Streets))
	if len(planLevels) != want {
		t.Errorf("%d plan levels, want %d", len(planLevels), want)
	}
	if revised := len(levels) - len(planLevels); revised < want/10 || revised > want*3/10 {
		t.Errorf("%d of %d plan levels revised, want about 20 %%", revised, want)
	}
	for _, l := range levels {
		if p := l["parent_plan_id"]; (p == "") != (l["plan_kind"] == "overall") || p != "" && !plans[p] {
			t.Errorf("plan %s (%s): parent %q", l["plan_id"], l["plan_kind"], p)
		}
		if l["plan_kind"] == "street" && l["street_code"] != strings.TrimPrefix(l["plan_id"], "P-") {
			t.Errorf("street plan %s has street_code %q", l["plan_id"], l["street_code"])
		}
	}

	// roles: three per plan level; every superior exists; only the overall plan's level I is at the top
	roleIDs := map[string]bool{}
	perLevel := map[string]int{}
	for _, r := range roles {
		roleIDs[r["role_id"]] = true
		perLevel[r["plan_id"]+"/"+r["level"]]++
	}
	for k := range planLevels {
		if perLevel[k] != 3 {
			t.Errorf("plan level %s has %d roles, want 3", k, perLevel[k])
		}
	}
	for _, r := range roles {
		sup := r["superior_role_id"]
		top := r["plan_id"] == OverallPlanID && r["level"] == "I"
		if (sup == "") != top || sup != "" && !roleIDs[sup] {
			t.Errorf("role %s: superior %q", r["role_id"], sup)
		}
	}
	for role, sup := range map[string]string{
		"R-P-110102001-IV-field_lead": "R-P-110102001-III-commander",
		"R-P-110102001-III-commander": "R-P-XC-II-commander",
		"R-P-HQ01-III-info_officer":   "R-P-HQ01-II-commander",
		"R-P-HQ01-II-commander":       "R-P-XC-I-commander",
		"R-P-XC-II-commander":         "R-P-XC-I-commander",
	} {
		i := slices.IndexFunc(roles, func(r map[string]string) bool { return r["role_id"] == role })
		if i < 0 || roles[i]["superior_role_id"] != sup {
			t.Errorf("role %s: want superior %s", role, sup)
		}
	}

	// holders: everyone reachable at the epoch, contact data usable, channels all used
	mobileRE := regexp.MustCompile(`^1[3-9][0-9]{9}$`)
	channels := map[string]int{}
	for _, h := range holders {
		if !roleIDs[h["role_id"]] {
			t.Errorf("holder of unknown role %s", h["role_id"])
		}
		if !mobileRE.MatchString(h["mobile"]) || !mobileRE.MatchString(h["deputy_mobile"]) {
			t.Errorf("role %s: mobiles %q, %q", h["role_id"], h["mobile"], h["deputy_mobile"])
		}
		if h["email"] != h["person_id"]+"@xicheng.example.gov.cn" || h["deputy_email"] == "" {
			t.Errorf("role %s: e-mails %q, %q", h["role_id"], h["email"], h["deputy_email"])
		}
		if h["deputy_person_id"] == "" || h["deputy_person_id"] == h["person_id"] {
			t.Errorf("role %s: deputy %q of %q", h["role_id"], h["deputy_person_id"], h["person_id"])
		}
		cs := strings.Split(h["channels"], ",")
		if !slices.Contains(cs, "app") {
			t.Errorf("role %s: channels %q without app", h["role_id"], h["channels"])
		}
		for _, c := range cs {
			channels[c]++
		}
		if from, _ := time.Parse(time.RFC3339, h["valid_from"]); from.After(w.Epoch) {
			t.Errorf("role %s: valid_from %s after the epoch", h["role_id"], h["valid_from"])
		}
	}
	for _, c := range []string{"app", "email", "sms", "wecom", "dingtalk"} {
		if channels[c] == 0 {
			t.Errorf("channel %s never used: %v", c, channels)
		}
	}
	for id := range roleIDs {
		if asOf(t, holders, id, w.Epoch) == nil {
			t.Errorf("role %s has no holder at the epoch", id)
		}
	}

	// personnel changes: about one role in ten, and "who held it on day D" follows them
	rowsOf := map[string][]map[string]string{}
	for _, h := range holders {
		rowsOf[h["role_id"]] = append(rowsOf[h["role_id"]], h)
	}
	changed := 0
	for id, rs := range rowsOf {
		if len(rs) < 2 {
			continue
		}
		changed++
		last := rs[len(rs)-1]
		at, _ := time.Parse(time.RFC3339, last["valid_from"])
		before, after := asOf(t, holders, id, at.Add(-24*time.Hour)), asOf(t, holders, id, at)
		if before == nil || after == nil || reflect.DeepEqual(before, after) {
			t.Errorf("role %s: row before %s %v, after %v", id, last["valid_from"], before, after)
			continue
		}
		if before["person_id"] == after["person_id"] && before["deputy_person_id"] == after["deputy_person_id"] {
			t.Errorf("role %s: the change on %s changes neither holder nor deputy", id, last["valid_from"])
		}
		if at.Before(w.Epoch.AddDate(-1, 0, 0)) {
			t.Errorf("role %s changed on %s, more than a year before the epoch", id, last["valid_from"])
		}
	}
	if changed < len(roleIDs)/20 || changed > len(roleIDs)/5 {
		t.Errorf("%d of %d roles changed hands, want about 10 %%", changed, len(roleIDs))
	}
}

func TestPlansAsDataDeterministic(t *testing.T) {
	cfg := testConfig()
	epoch := testUntil.AddDate(0, 0, -7)
	tables := func(cfg Config) map[string]*Table {
		w, err := NewWorld(cfg, epoch)
		if err != nil {
			t.Fatal(err)
		}
		return map[string]*Table{"plan_levels": w.Tables["plan_levels"], "plan_roles": w.Tables["plan_roles"], "role_holders": w.Tables["role_holders"]}
	}
	a, b := tables(cfg), tables(cfg)
	if !reflect.DeepEqual(a, b) {
		t.Error("two worlds with the same seed have different plans")
	}
	cfg.Seed++
	c := tables(cfg)
	for _, n := range []string{"plan_levels", "role_holders"} {
		if reflect.DeepEqual(a[n], c[n]) {
			t.Errorf("%s: another seed gives the same rows", n)
		}
	}
}
