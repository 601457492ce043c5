package models

import (
	"context"
	"strings"
	"testing"
)

// TestPlanKPIsResponses computes the digital plans' response KPIs (targets
// 11–13 of marts.plan_kpis, issue 24) from a hand-made response timeline
// and drills, worked out by hand below.
func TestPlanKPIsResponses(t *testing.T) {
	tl := loadFixture(t)
	// Two units responsible for a plan.
	tl.load("raw.emergency_plans", `SELECT * FROM (VALUES
		('P-U1', 1, TIMESTAMPTZ '2025-03-01 09:00:00+08', '单位一预案', 'unit', 'U1'),
		('P-U2', 1, TIMESTAMPTZ '2025-03-01 09:00:00+08', '单位二预案', 'unit', 'U2'),
		('P-S1', 1, TIMESTAMPTZ '2025-03-01 09:00:00+08', '街道预案', 'street', '110102001'))
		AS t(plan_id, revision, revised_at, title_zh, owner_kind, owner_id)`)
	// In the year before 2026-06-30: U1 drilled twice, U2 once, U1 also
	// trained (not a drill) and a street drilled (not a unit): 3 drills for
	// 2 units = 1.5. The year before that: one drill of U1 = 0.5.
	tl.load("raw.drills", `SELECT * FROM (VALUES
		('D1', TIMESTAMPTZ '2026-01-10 10:00:00+08', 'drill', 'unit', 'U1'),
		('D2', TIMESTAMPTZ '2026-05-10 10:00:00+08', 'drill', 'unit', 'U1'),
		('D3', TIMESTAMPTZ '2025-12-01 10:00:00+08', 'drill', 'unit', 'U2'),
		('D4', TIMESTAMPTZ '2026-02-01 10:00:00+08', 'skill_training', 'unit', 'U1'),
		('D5', TIMESTAMPTZ '2026-02-01 10:00:00+08', 'drill', 'street', '110102001'),
		('D6', TIMESTAMPTZ '2025-05-01 10:00:00+08', 'drill', 'unit', 'U1'))
		AS t(id, held_at, kind, owner_kind, owner_id)`)
	// Four tasks notified on 2026-06-20: T1 acknowledged after 2 min, T2
	// after 7 (its deputy was notified again at 10:06: the first
	// notification counts), T3 after 4, T4 never. Within 5 min: 2 of 4 =
	// 50 %; median of 2, 4 and 7 min = 4 (≤ 5: met). T5 was notified after
	// the as-of day: not counted.
	tl.load("marts.responses", `SELECT * FROM (VALUES
		(1, TIMESTAMPTZ '2026-06-20 10:00:00+08', 'activated', 'R1', NULL),
		(2, TIMESTAMPTZ '2026-06-20 10:00:00+08', 'notified', 'R1', 'T1'),
		(3, TIMESTAMPTZ '2026-06-20 10:00:00+08', 'notified', 'R1', 'T2'),
		(4, TIMESTAMPTZ '2026-06-20 10:00:00+08', 'notified', 'R1', 'T3'),
		(5, TIMESTAMPTZ '2026-06-20 10:00:00+08', 'notified', 'R1', 'T4'),
		(6, TIMESTAMPTZ '2026-06-20 10:00:05+08', 'delivered', 'R1', 'T1'),
		(7, TIMESTAMPTZ '2026-06-20 10:02:00+08', 'acknowledged', 'R1', 'T1'),
		(8, TIMESTAMPTZ '2026-06-20 10:04:00+08', 'acknowledged', 'R1', 'T3'),
		(9, TIMESTAMPTZ '2026-06-20 10:06:00+08', 'escalated', 'R1', 'T2'),
		(10, TIMESTAMPTZ '2026-06-20 10:06:00+08', 'notified', 'R1', 'T2'),
		(11, TIMESTAMPTZ '2026-06-20 10:07:00+08', 'acknowledged', 'R1', 'T2'),
		(12, TIMESTAMPTZ '2026-06-20 10:08:00+08', 'acknowledged', 'R1', 'T2'),
		(13, TIMESTAMPTZ '2026-07-02 10:00:00+08', 'notified', 'R2', 'T5'))
		AS t(seq, "at", event, response_id, task_id)`)
	p := embeddedProject(t)
	if _, err := tl.runner(p, nil).Run(context.Background(), RunOptions{Vars: map[string]any{"as_of_date": "2026-06-30"}}); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, row := range tl.query("SELECT target_no, figure, figure_year_before, better, status FROM marts.plan_kpis WHERE target_no >= 11 ORDER BY target_no") {
		got[row[:strings.Index(row, "|")]] = row
	}
	for no, want := range map[string]string{
		"11": "11|50|NULL|higher|in_progress",
		"12": "12|4|NULL|lower|met",
		"13": "13|1.5|0.5|higher|met",
	} {
		if got[no] != want {
			t.Errorf("target %s: got %q, want %q", no, got[no], want)
		}
	}
	if rows := tl.query("SELECT count(*) FROM marts.plan_kpis"); rows[0] != "13" {
		t.Errorf("plan_kpis rows %v, want 13", rows)
	}
}
