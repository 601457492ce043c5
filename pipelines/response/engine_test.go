package response

import (
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

var day0 = time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)

// fixturePlans: a street plan (III yellow, IV blue), a special HQ plan for
// crowds (II orange) and the overall plan (I red), three roles a level, a
// personnel change of the street commander on June 10th.
func fixturePlans() *Plans {
	t0 := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	levels := []PlanLevel{
		{PlanID: "P-XC", PlanKind: "overall", TitleZh: "总体预案", TitleEn: "Overall plan", Level: "I", MinWarningLevel: "red", ValidFrom: t0},
		{PlanID: "P-HQ07", ParentPlanID: "P-XC", PlanKind: "hq", TitleZh: "大型活动专项预案", Level: "II", WarningKind: "crowd", MinWarningLevel: "orange", ValidFrom: t0},
		{PlanID: "P-S1", ParentPlanID: "P-XC", PlanKind: "street", TitleZh: "街道预案", Level: "III", MinWarningLevel: "yellow", StreetCode: "S1", ValidFrom: t0},
		{PlanID: "P-S1", ParentPlanID: "P-XC", PlanKind: "street", TitleZh: "街道预案", Level: "IV", MinWarningLevel: "blue", StreetCode: "S1", ValidFrom: t0},
		{PlanID: "P-S2", ParentPlanID: "P-XC", PlanKind: "street", TitleZh: "二街道预案", Level: "III", MinWarningLevel: "yellow", StreetCode: "S2", ValidFrom: t0},
	}
	var roles []Role
	var holders []Holder
	n := 0
	add := func(plan, level, street, superior string) {
		for i, name := range []string{"commander", "field", "info"} {
			id := "R-" + plan + "-" + level + "-" + name
			sup := superior
			if i > 0 {
				sup = "R-" + plan + "-" + level + "-commander"
			}
			roles = append(roles, Role{RoleID: id, PlanID: plan, Level: level, RoleZh: name + "岗", RoleEn: name, DutyZh: "职责" + name, DutyEn: "duty " + name, SuperiorRoleID: sup, Rank: i + 1, ValidFrom: t0})
			n++
			p := "U" + string(rune('A'+n))
			holders = append(holders, Holder{RoleID: id, PersonID: p + "1", PersonName: "人" + p, DeputyID: p + "2", DeputyName: "替" + p,
				DeputyMobile: "13800000000", StreetCode: street, Mobile: "13900000000", Email: p + "@x.example",
				Channels: [][]string{{"app", "sms"}, {"app", "email"}, {"app", "wecom"}}[i], ValidFrom: t0})
		}
	}
	add("P-XC", "I", "", "")
	add("P-HQ07", "II", "", "R-P-XC-I-commander")
	add("P-S1", "III", "S1", "R-P-HQ07-II-commander")
	add("P-S1", "IV", "S1", "R-P-S1-III-commander")
	add("P-S2", "III", "S2", "R-P-HQ07-II-commander")
	// Personnel change: the street commander of level III from June 10th.
	holders = append(holders, Holder{RoleID: "R-P-S1-III-commander", PersonID: "NEW1", PersonName: "新指挥", DeputyID: "NEW2", DeputyName: "新替补",
		StreetCode: "S1", Channels: []string{"app", "sms"}, ValidFrom: time.Date(2025, 6, 10, 0, 0, 0, 0, time.UTC)})
	return NewPlans(levels, roles, holders)
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func newTestEngine(t *testing.T) (*Engine, *clock) {
	c := &clock{t: day0}
	cfg := DefaultConfig()
	return NewEngine(cfg, nil, fixturePlans(), c.now, nil), c
}

var wseq int64

func warn(id, subject, street, level, state string) Warning {
	wseq++
	return Warning{WarningID: id, Kind: "crowd", SubjectType: "venue", SubjectID: subject, SubjectNameZh: "场所" + subject, StreetCode: street,
		Level: level, State: state, MessageZh: "客流" + level, MessageEn: "crowd " + level, Seq: wseq}
}

func events(e *Engine, kind string) []Event {
	var out []Event
	for _, ev := range e.Outbox() {
		if ev.Event == kind {
			out = append(out, ev)
		}
	}
	return out
}

func TestResolve(t *testing.T) {
	p := fixturePlans()
	for _, c := range []struct{ kind, level, street, plan, pl string }{
		{"crowd", "blue", "S1", "P-S1", "IV"},
		{"crowd", "yellow", "S1", "P-S1", "III"},
		{"crowd", "orange", "S1", "P-HQ07", "II"},
		{"rainstorm", "orange", "S1", "P-S1", "III"}, // the crowd HQ does not cover rain
		{"crowd", "red", "S2", "P-XC", "I"},
		{"crowd", "blue", "S2", "", ""}, // S2 has no level IV
	} {
		got, ok := p.Resolve(c.kind, c.level, c.street, day0)
		if c.plan == "" {
			if ok {
				t.Errorf("%v: resolved %s %s, want none", c, got.PlanID, got.Level)
			}
			continue
		}
		if !ok || got.PlanID != c.plan || got.Level != c.pl {
			t.Errorf("%s %s in %s → %s %s (ok %v), want %s %s", c.kind, c.level, c.street, got.PlanID, got.Level, ok, c.plan, c.pl)
		}
	}
}

// A surge: its intervals are one response; a higher level activates the
// next plan level with new tasks; clearing stops the timers.
func TestGroupingAndActivation(t *testing.T) {
	e, c := newTestEngine(t)
	must(t, e.Apply(warn("W1", "V1", "S1", "yellow", "raised"), 1))
	tasks := e.Tasks("", false)
	if len(tasks) != 3 {
		t.Fatalf("tasks after a yellow raise = %d, want 3 (the street plan's level III roles)", len(tasks))
	}
	for _, tk := range tasks {
		if tk.Level != "III" || tk.Response.PlanID != "P-S1" {
			t.Errorf("task %s: plan %s level %s, want P-S1 III", tk.ID, tk.Response.PlanID, tk.Level)
		}
	}
	if got := len(e.Pending()); got != 3 {
		t.Errorf("deliveries queued = %d, want 3 (sms, email, wecom; in-app is the task list)", got)
	}
	// The next intervals of the same surge, and a second rule's warning of
	// the same venue at the same level: grouped.
	c.add(5 * time.Minute)
	must(t, e.Apply(warn("W2", "V1", "S1", "yellow", "raised"), 1))
	if got := len(e.Tasks("", false)); got != 3 {
		t.Errorf("tasks after a second yellow of the same venue = %d, want 3 (grouped)", got)
	}
	if got := len(events(e, EvActivated)); got != 1 {
		t.Errorf("activations = %d, want 1", got)
	}
	// Orange: the crowd HQ's level II joins.
	must(t, e.Apply(warn("W1", "V1", "S1", "orange", "escalated"), 1))
	if got := len(e.Tasks("", false)); got != 6 {
		t.Errorf("tasks after orange = %d, want 6", got)
	}
	if acts := events(e, EvActivated); len(acts) != 2 || acts[1].PlanID != "P-HQ07" || acts[1].PlanLevel != "II" {
		t.Errorf("activations %v, want a second one for P-HQ07 II", acts)
	}
	// Another venue of the street joins the response (group_by street),
	// its yellow inhibited by the response's orange; another street is
	// another response.
	must(t, e.Apply(warn("W3", "V2", "S1", "yellow", "raised"), 1))
	if got := len(e.Tasks("", false)); got != 6 {
		t.Errorf("tasks after a second venue of the street = %d, want 6", got)
	}
	must(t, e.Apply(warn("W5", "V9", "S2", "yellow", "raised"), 1))
	if got := len(events(e, EvRaised)); got != 3 { // W1 and W2 in one response (W3 inhibited), W5 another
		t.Errorf("raised events = %d, want 3", got)
	}
	if got := events(e, EvInhibited); len(got) != 1 || got[0].WarningID != "W3" {
		t.Errorf("inhibited = %+v, want W3", got)
	}
	if r, _ := e.Response("R000001"); len(r.Subjects) != 2 {
		t.Errorf("subjects of the street's response = %+v, want V1 and V2", r.Subjects)
	}
	// Cleared: no more escalation for the street's tasks.
	for _, id := range []string{"W1", "W2", "W3"} {
		must(t, e.Apply(warn(id, "V1", "S1", "yellow", "cleared"), 1))
	}
	if got := len(events(e, EvCleared)); got != 1 {
		t.Errorf("cleared events = %d, want 1", got)
	}
	c.add(time.Hour)
	must(t, e.Tick())
	for _, ev := range events(e, EvEscalated) {
		if ev.ResponseID == "R000001" {
			t.Errorf("a task of a cleared response escalated: %+v", ev)
		}
	}
	// A transition seen twice is applied once.
	w := warn("W4", "V3", "S1", "yellow", "raised")
	must(t, e.Apply(w, 1))
	must(t, e.Apply(w, 1))
	if got := len(events(e, EvRaised)); got != 4 {
		t.Errorf("raised after a repeated transition = %d, want 3", got)
	}
}

// A red response inhibits the same subject's yellow; a silence mutes.
func TestInhibitionAndSilence(t *testing.T) {
	e, c := newTestEngine(t)
	must(t, e.Apply(warn("W1", "V1", "S2", "red", "raised"), 1))
	n := len(e.Tasks("", false))
	must(t, e.Apply(warn("W9", "V1", "S2", "yellow", "raised"), 1))
	if got := len(e.Tasks("", false)); got != n {
		t.Errorf("tasks after the inhibited yellow = %d, want %d", got, n)
	}
	if got := events(e, EvInhibited); len(got) != 1 || got[0].WarningID != "W9" {
		t.Errorf("inhibited events = %+v, want one for W9", got)
	}
	if _, err := e.AddSilence(Silence{Kind: "crowd", StreetCode: "S1", StartsAt: c.now(), EndsAt: c.now().Add(time.Hour)}); err == nil {
		t.Error("a silence without a reason was accepted")
	}
	s, err := e.AddSilence(Silence{Kind: "crowd", StreetCode: "S1", Reason: "演练 drill", Author: "admin", StartsAt: c.now(), EndsAt: c.now().Add(time.Hour)})
	must(t, err)
	must(t, e.Apply(warn("W2", "V5", "S1", "yellow", "raised"), 1))
	if got := events(e, EvSilenced); len(got) != 1 {
		t.Fatalf("silenced events = %d, want 1", len(got))
	}
	for _, tk := range e.Tasks("", false) {
		if tk.Response.SubjectID == "V5" {
			t.Errorf("a silenced warning made task %s", tk.ID)
		}
	}
	c.add(61 * time.Minute)
	must(t, e.Tick())
	if len(e.Silences()) != 0 {
		t.Errorf("silence %s still there after it ended", s.ID)
	}
	must(t, e.Apply(warn("W2", "V5", "S1", "orange", "escalated"), 1))
	found := false
	for _, tk := range e.Tasks("", false) {
		found = found || tk.Response.SubjectID == "V5"
	}
	if !found {
		t.Error("after the silence ended, the warning made no response")
	}
}

// Escalation on a controllable clock: holder → deputy after ack_after, →
// the superior role's holder after as long again; an acknowledgement stops it.
func TestEscalationChain(t *testing.T) {
	e, c := newTestEngine(t)
	must(t, e.Apply(warn("W1", "V1", "S1", "yellow", "raised"), 1))
	byRole := map[string]TaskView{}
	for _, tk := range e.Tasks("", false) {
		byRole[tk.RoleEn] = tk
	}
	cmd, field := byRole["commander"], byRole["field"]
	c.add(4*time.Minute + 59*time.Second)
	must(t, e.Tick())
	if got := len(events(e, EvEscalated)); got != 0 {
		t.Fatalf("escalated before ack_after: %d", got)
	}
	must(t, e.Ack(field.ID, field.Assignee()))
	if err := e.Ack(cmd.ID, "NOBODY"); err != ErrNotYours {
		t.Errorf("ack by a stranger: %v, want ErrNotYours", err)
	}
	c.add(time.Second)
	must(t, e.Tick())
	esc := events(e, EvEscalated)
	if len(esc) != 2 { // commander and info, not the acknowledged field lead
		t.Fatalf("escalations at 5 min = %d, want 2: %+v", len(esc), esc)
	}
	h, _ := fixturePlans().HolderAt(cmd.RoleID, day0)
	var toDeputy bool
	for _, ev := range esc {
		toDeputy = toDeputy || (ev.TaskID == cmd.ID && ev.PersonID == h.DeputyID)
	}
	if !toDeputy {
		t.Errorf("commander's task did not go to the deputy %s: %+v", h.DeputyID, esc)
	}
	// The deputy sees it in their list now.
	if got := e.Tasks(h.DeputyID, false); len(got) != 1 || got[0].ID != cmd.ID {
		t.Errorf("deputy's tasks = %v, want the commander's", got)
	}
	c.add(5 * time.Minute)
	must(t, e.Tick())
	sup, _ := fixturePlans().HolderAt("R-P-HQ07-II-commander", day0)
	var toSuperior bool
	for _, ev := range events(e, EvEscalated) {
		toSuperior = toSuperior || (ev.TaskID == cmd.ID && ev.PersonID == sup.PersonID)
	}
	if !toSuperior {
		t.Errorf("commander's task did not reach the superior role's holder %s", sup.PersonID)
	}
	// The deputy may still acknowledge; then it is closed by them.
	must(t, e.Ack(cmd.ID, h.DeputyID))
	c.add(time.Hour)
	must(t, e.Tick())
	if got := len(events(e, EvEscalated)); got != 4 { // cmd ×2, info ×2
		t.Errorf("escalations in all = %d, want 4", got)
	}
	// Closing every task closes the response.
	for _, tk := range e.Tasks("", true) {
		must(t, e.Close(tk.ID, tk.Assignee(), "处置完毕"))
	}
	closed := events(e, EvClosed)
	if len(closed) != 4 || closed[3].TaskID != "" {
		t.Errorf("closed events = %d (last %+v), want 3 tasks + the response", len(closed), closed[len(closed)-1])
	}
}

// Who holds a role is asked on the day: a personnel change routes new
// tasks to the new holder.
func TestPersonnelChange(t *testing.T) {
	e, c := newTestEngine(t)
	e.cfg.GroupBy = "subject"
	must(t, e.Apply(warn("W1", "V1", "S1", "yellow", "raised"), 1))
	c.t = time.Date(2025, 6, 11, 9, 0, 0, 0, time.UTC)
	must(t, e.Apply(warn("W2", "V2", "S1", "yellow", "raised"), 1))
	owners := map[string]string{}
	for _, tk := range e.Tasks("", false) {
		if tk.RoleEn == "commander" {
			owners[tk.Response.SubjectID] = tk.Assignee()
		}
	}
	if owners["V1"] == "NEW1" || owners["V2"] != "NEW1" {
		t.Errorf("commanders: %v; want the old holder before June 10th and NEW1 after", owners)
	}
}

// The state survives a restart: what was saved is what is loaded, and a
// transition applied before is not applied again.
func TestStatePersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	c := &clock{t: day0}
	e := NewEngine(DefaultConfig(), nil, fixturePlans(), c.now, SaveState(path))
	w := warn("W1", "V1", "S1", "yellow", "raised")
	must(t, e.Apply(w, 1))
	tk := e.Tasks("", false)[0]
	must(t, e.Progress(tk.ID, tk.Assignee(), "已到场 on site"))
	st, err := LoadState(path)
	must(t, err)
	e2 := NewEngine(DefaultConfig(), st, fixturePlans(), c.now, SaveState(path))
	if !reflect.DeepEqual(e.Tasks("", true), e2.Tasks("", true)) {
		t.Error("tasks differ after a reload")
	}
	must(t, e2.Apply(w, 1))
	if len(events(e2, EvRaised)) != 1 || len(e2.Outbox()) != len(e.Outbox()) {
		t.Error("a transition applied before the restart was applied again")
	}
	must(t, e2.Committed(e2.Outbox()[2].Seq))
	if got := e2.Outbox()[0].Seq; got != 4 {
		t.Errorf("first outbox seq after committing 3 = %d, want 4", got)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// History is not paged: a replayed transition older than liveFrom moves
// the cursor only. Channels not configured are not queued.
func TestHistoryAndChannels(t *testing.T) {
	e, c := newTestEngine(t)
	e.SetChannels([]string{"sms"})
	old := warn("W1", "V1", "S1", "yellow", "raised")
	old.EventTime = c.now().Add(-3 * time.Hour)
	live := warn("W2", "V2", "S1", "yellow", "raised")
	live.EventTime = c.now().Add(-time.Minute)
	must(t, e.ApplyBatch([]Warning{old, live}, 1, c.now().Add(-time.Hour)))
	if got := events(e, EvRaised); len(got) != 1 || got[0].SubjectID != "V2" {
		t.Fatalf("raised %+v, want V2 only (V1 is history)", got)
	}
	if !e.Seen(old.Seq, 1) {
		t.Error("the history transition did not move the cursor")
	}
	for _, d := range e.Pending() {
		if d.Channel != "sms" {
			t.Errorf("a delivery on %s, which is not configured", d.Channel)
		}
	}
	if len(e.Pending()) != 1 {
		t.Errorf("deliveries = %d, want 1 (the commander's sms)", len(e.Pending()))
	}
	for _, ev := range events(e, EvNotified) {
		if ev.Channel != "app" && ev.Channel != "sms" {
			t.Errorf("notified on %s, not configured", ev.Channel)
		}
	}
}

// A cleared response closes CloseAfterClear later with its tasks, and
// leaves the state KeepClosed after, once its events are committed.
func TestAutoCloseAndPrune(t *testing.T) {
	e, c := newTestEngine(t)
	e.cfg.CloseAfterClear, e.cfg.KeepClosed = 30*time.Minute, time.Hour
	must(t, e.Apply(warn("W1", "V1", "S1", "yellow", "raised"), 1))
	must(t, e.Apply(warn("W1", "V1", "S1", "yellow", "cleared"), 1))
	c.add(29 * time.Minute)
	must(t, e.Tick())
	if len(e.Tasks("", false)) != 3 {
		t.Fatal("closed before close_after_clear")
	}
	c.add(time.Minute)
	must(t, e.Tick())
	if got := len(e.Tasks("", false)); got != 0 {
		t.Errorf("open tasks after close_after_clear = %d, want 0", got)
	}
	if got := len(e.Tasks("", true)); got != 3 {
		t.Errorf("closed tasks kept = %d, want 3 (until keep_closed)", got)
	}
	c.add(2 * time.Hour)
	must(t, e.Tick())
	if got := len(e.Tasks("", true)); got != 3 {
		t.Errorf("tasks dropped while their events are not committed: %d left, want 3", got)
	}
	must(t, e.Committed(e.Outbox()[len(e.Outbox())-1].Seq))
	must(t, e.Tick())
	if got := len(e.Tasks("", true)); got != 0 {
		t.Errorf("tasks kept after keep_closed and commit = %d, want 0", got)
	}
}
