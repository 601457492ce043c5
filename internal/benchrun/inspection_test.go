package main

import (
	"reflect"
	"testing"

	"citybrain/internal/sim"
	"citybrain/pipelines/inspection"
)

// TestSimulateInspections runs a quarter of the inspection suite: every arm
// makes the same number of inspections, all assigned; the risk-based arms
// meet the coverage rules; the planner with records is given exactly the
// history's inspections and the arm's own, nothing of the truth; the run is
// reproducible.
func TestSimulateInspections(t *testing.T) {
	w, err := sim.NewWorld(sim.DefaultConfig(), inspectionEpoch)
	if err != nil {
		t.Fatal(err)
	}
	o, err := simulateInspections(w, sim.DefaultTruthConfig(), 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Arms) != len(inspectionArms) || o.Budget < 1000 {
		t.Fatalf("%d arms, budget %d", len(o.Arms), o.Budget)
	}
	un := o.Arms[len(o.Arms)-1]
	for k, ap := range inspectionArms {
		a := o.Arms[k]
		if a.Inspections != 3*o.Budget || a.Unassigned != 0 || a.Found == 0 {
			t.Errorf("%s: %d inspections (budget %d/month), %d unassigned, %d found", ap.Name, a.Inspections, o.Budget, a.Unassigned, a.Found)
		}
		if ap.Method == "" {
			if a.RedMet >= a.RedCases/2 {
				t.Errorf("uniform red coverage %d/%d", a.RedMet, a.RedCases)
			}
			continue
		}
		if a.RedCases != 3*o.Levels["red"] || a.RedMet != a.RedCases || a.OrangeCases != o.Levels["orange"] || a.OrangeMet != a.OrangeCases {
			t.Errorf("%s coverage: red %d/%d, orange %d/%d", ap.Name, a.RedMet, a.RedCases, a.OrangeMet, a.OrangeCases)
		}
		// Records given in the last month: the history and the first two
		// months' inspections.
		want := 0
		if ap.Records {
			want = o.HistoryInspections + 2*o.Budget
		}
		if a.Records != want {
			t.Errorf("%s: the planner was given %d records in the last month, want %d", ap.Name, a.Records, want)
		}
	}
	if o.Rates[inspection.LevelBlue].Days == 0 || o.Rates[inspection.LevelBlue].Fallback {
		t.Errorf("expected method's rates %+v", o.Rates)
	}
	again, err := simulateInspections(w, sim.DefaultTruthConfig(), 3)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(o, again) {
		t.Error("two runs differ")
	}
	rs := inspectionResults("test", sim.DefaultTruthConfig(), o)
	if len(rs) != 6+2+6 || rs[0].Anchor == nil || rs[0].Anchor.Ratio != o.Arms[0].per100()/un.per100() {
		t.Errorf("%d results: %+v", len(rs), rs)
	}
}
