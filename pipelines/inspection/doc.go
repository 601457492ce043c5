// Package inspection plans the district's monthly supervision inspections
// (双随机、一公开, issue 25, docs/inspection.md): which units are inspected,
// by which of their street's grid inspectors, on which day.
//
// The plan is risk-based but still random: red units every month and orange
// ones at least once a quarter are mandatory, a share of the budget is drawn
// uniformly so that every unit can be picked whatever its portrait, and the
// rest is drawn with probability proportional to a weight. By default
// (MethodExpected) the weight is the hazards the unit is expected to hold
// when inspected: its hazard rate — its portrait level's rate from the
// inspection records, shrunk towards its own record (empirical Bayes) — ×
// the days since its last inspection, capped at a year, the classic rule
// for periodic inspection: a unit inspected last month holds little to
// find, whatever its level. MethodLevel, the first design, weights by level
// and hazards found in the last 90 days. Inspectors are drawn at random
// within the street, never the unit's last inspector when another is
// available. Everything random comes from one PCG stream seeded by the
// plan's seed, so anyone with the same inputs and seed gets the same plan —
// the plan can be published and checked (一公开).
//
// Draw is pure: no I/O, no clock, no global state; the caller loads the
// portraits, the inspection history and the inspectors' leave.
package inspection
