package response

import (
	"testing"
	"time"
)

// Emergency calls: two fires in a street in 30 minutes activate nothing,
// the third activates the fire-safety HQ's level; a fourth joins; calls of
// another street or category do not; history is not counted; when the
// window empties the response clears.
func TestIncidentClusters(t *testing.T) {
	e, c := newTestEngine(t)
	t0 := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	e.plans.levels["P-HQ03|III"] = []PlanLevel{{PlanID: "P-HQ03", ParentPlanID: "P-XC", PlanKind: "hq", TitleZh: "消防专项预案", Level: "III",
		IncidentType: "fire", ValidFrom: t0}}
	e.plans.roles["R-P-HQ03-III-commander"] = []Role{{RoleID: "R-P-HQ03-III-commander", PlanID: "P-HQ03", Level: "III", RoleZh: "总指挥", DutyZh: "组织灭火救援", Rank: 1, ValidFrom: t0}}
	e.plans.holders["R-P-HQ03-III-commander"] = []Holder{{RoleID: "R-P-HQ03-III-commander", PersonID: "F1", PersonName: "消防指挥", Channels: []string{"app"}, ValidFrom: t0}}
	call := func(id, cat, street string, min int) Incident {
		return Incident{ID: id, Category: cat, StreetCode: street, Title: "火情 " + id, At: c.now().Add(time.Duration(min) * time.Minute)}
	}
	must(t, e.ApplyIncidents([]Incident{call("C0", "fire", "S1", -300), call("C1", "fire", "S1", 0), call("C2", "fire", "S1", 10),
		call("C3", "fire", "S2", 12), call("C4", "medical", "S1", 12)}, c.now().Add(-time.Hour)))
	if got := len(events(e, EvActivated)); got != 0 {
		t.Fatalf("activated after two fires in S1 (and one history call) = %d, want 0", got)
	}
	must(t, e.ApplyIncidents([]Incident{call("C5", "fire", "S1", 20), call("C5", "fire", "S1", 20)}, c.now().Add(-time.Hour)))
	acts := events(e, EvActivated)
	if len(acts) != 1 || acts[0].PlanID != "P-HQ03" || acts[0].PlanLevel != "III" || acts[0].SubjectID != "S1" {
		t.Fatalf("activations %+v, want P-HQ03 III for street S1", acts)
	}
	if tk := e.Tasks("F1", false); len(tk) != 1 || tk[0].Response.Kind != "incident" {
		t.Errorf("the fire HQ commander's tasks = %+v", tk)
	}
	must(t, e.ApplyIncidents([]Incident{call("C6", "fire", "S1", 25)}, time.Time{}))
	if got := len(events(e, EvActivated)); got != 1 {
		t.Errorf("a fourth call activated again: %d activations", got)
	}
	if got := len(events(e, EvRaised)); got != 2 {
		t.Errorf("raised events = %d, want 2 (the activation, the call joining)", got)
	}
	c.add(26 * time.Minute)
	must(t, e.Tick())
	if got := len(events(e, EvCleared)); got != 0 {
		t.Errorf("cleared while 3 calls are in the window: %d", got)
	}
	c.add(30 * time.Minute)
	must(t, e.Tick())
	if got := len(events(e, EvCleared)); got != 1 {
		t.Errorf("cleared events after the window emptied = %d, want 1", got)
	}
}
