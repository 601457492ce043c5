package main

import (
	"reflect"
	"testing"

	"citybrain/internal/sim"
)

// TestSimulateInspections runs a quarter of the inspection suite: both arms
// make the same number of inspections, all assigned; the weighted plan meets
// the coverage rules; the run is reproducible.
func TestSimulateInspections(t *testing.T) {
	w, err := sim.NewWorld(sim.DefaultConfig(), inspectionEpoch)
	if err != nil {
		t.Fatal(err)
	}
	o, err := simulateInspections(w, sim.DefaultTruthConfig(), 3)
	if err != nil {
		t.Fatal(err)
	}
	wt, un := o.Weighted, o.Uniform
	if o.Budget < 1000 || wt.Inspections != 3*o.Budget || un.Inspections != wt.Inspections || wt.Unassigned+un.Unassigned != 0 {
		t.Errorf("budget %d/month: %d weighted, %d uniform inspections, %d + %d unassigned", o.Budget, wt.Inspections, un.Inspections, wt.Unassigned, un.Unassigned)
	}
	if wt.RedCases != 3*o.Levels["red"] || wt.RedMet != wt.RedCases || wt.OrangeCases != o.Levels["orange"] || wt.OrangeMet != wt.OrangeCases {
		t.Errorf("weighted coverage: red %d/%d, orange %d/%d", wt.RedMet, wt.RedCases, wt.OrangeMet, wt.OrangeCases)
	}
	if un.RedMet >= un.RedCases/2 || wt.Found == 0 || un.Found == 0 {
		t.Errorf("uniform red coverage %d/%d; found %d weighted, %d uniform", un.RedMet, un.RedCases, wt.Found, un.Found)
	}
	again, err := simulateInspections(w, sim.DefaultTruthConfig(), 3)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(o, again) {
		t.Error("two runs differ")
	}
	rs := inspectionResults("test", sim.DefaultTruthConfig(), o)
	if len(rs) != 6 || rs[0].Anchor == nil || rs[0].Anchor.Ratio != wt.per100()/un.per100() {
		t.Errorf("results %+v", rs)
	}
}
