package warnings

import (
	"fmt"
	"strings"

	"citybrain/schemas"
)

// Unit is one part of a partitioned warning engine (docs/roles.md): the
// engine's work split so that several instances share it, each unit owned by
// one instance at a time and moved between them by the consumer group
// (group.go).
//
// With P partitions per input topic there are P+1 units:
//
//   - cell unit k (0 ≤ k < P) reads partition k of every routed input but
//     crowd_counts and runs the rules of one cell, sensor, station or segment
//     (the records of one are in one partition: the topics are keyed by the
//     schema's route_by field);
//   - the district unit (index P) runs the rules that span partitions: the
//     venue rules (a venue sums cells spread over the partitions; it reads
//     every partition of mobile_signal, keeping only the records of venue
//     cells, and of crowd_counts) and the rules of topics that are not routed
//     (traffic_collisions.hotspot clusters the whole district).
//
// The zero Unit is the whole engine in one (the embedded default).
type Unit struct {
	Index int // 0 … Count-1
	Count int // units of the engine (P+1); 0 or 1: not partitioned
}

// Partitioned reports whether the engine is split into units.
func (u Unit) Partitioned() bool { return u.Count > 1 }

// District reports whether u is the district unit.
func (u Unit) District() bool { return u.Partitioned() && u.Index == u.Count-1 }

// Name is p<k> for cell unit k, district for the district unit, "" for the whole engine.
func (u Unit) Name() string {
	switch {
	case !u.Partitioned():
		return ""
	case u.District():
		return "district"
	}
	return fmt.Sprintf("p%d", u.Index)
}

// spanning are the rules of routed inputs that read several partitions' units.
var spanning = map[string]bool{"mobile_signal.crowd_venue": true}

// spanningInputs are routed inputs read whole by the district unit.
var spanningInputs = map[string]bool{"crowd_counts": true}

// Runs reports whether the unit runs the rule input.name (s: the input's schema).
func (u Unit) Runs(s *schemas.Schema, rule string) bool {
	if !u.Partitioned() {
		return true
	}
	district := s.RouteIndex() < 0 || spanning[s.Name+"."+rule] || spanningInputs[s.Name]
	return district == u.District()
}

// Reads says whether the unit reads the input, and whether every partition
// of it (else partition Index only).
func (u Unit) Reads(s *schemas.Schema, rules *RuleSet) (read, whole bool) {
	if !u.Partitioned() {
		return true, true
	}
	for name := range rules.Rules[s.Name] {
		if u.Runs(s, name) {
			return true, u.District()
		}
	}
	return false, false
}

// keepRules drops the rules the unit does not run from rs and the bulk rules.
func (u Unit) keepRules(reg *schemas.Registry, rs *RuleSet, bulk *bulkRules) error {
	if !u.Partitioned() {
		return nil
	}
	for in, rules := range rs.Rules {
		s, err := reg.Get(in)
		if err != nil {
			return err
		}
		for name := range rules {
			if !u.Runs(s, name) {
				delete(rules, name)
				if bulk != nil && bulk.Rules[in] != nil {
					delete(bulk.Rules[in], name)
				}
			}
		}
	}
	return nil
}

// venueCellRecords keeps the mobile-signal records of venue cells (the district unit's share).
func (e *Engine) venueCellRecords(s *schemas.Schema, recs []schemas.Record) []schemas.Record {
	ci := s.Index("grid_cell_id")
	out := recs[:0:0]
	for _, r := range recs {
		if id, ok := r[ci].(string); ok && e.venueCells[id] {
			out = append(out, r)
		}
	}
	return out
}

// Unit is the engine's unit.
func (e *Engine) Unit() Unit { return e.unit }

// unitKey suffixes a key of the shared table summary with the unit's name.
func (u Unit) key(k string) string {
	if !u.Partitioned() {
		return k
	}
	return k + "." + strings.ReplaceAll(u.Name(), ".", "_")
}
