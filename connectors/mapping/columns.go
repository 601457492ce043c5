package mapping

import "sort"

// Columns lists the feed columns the mapping reads by name (column,
// parts, template and coordinate origins, filter conditions). Transports of
// self-describing records (JSON) use it to treat a column a record lacks as
// missing rather than as a header mismatch.
func (m *Mapper) Columns() []string {
	set := map[string]bool{}
	addSpec := func(fs FieldSpec) {
		if fs.Column != "" {
			set[fs.Column] = true
		}
		for _, c := range fs.Parts {
			set[c] = true
		}
		if fs.Template != "" {
			if parts, err := parseTemplate(fs.Template); err == nil {
				for _, p := range parts {
					if p.ref {
						set[p.col] = true
					}
				}
			}
		}
	}
	for _, fs := range m.spec.Fields {
		addSpec(fs)
	}
	if c := m.spec.Coordinates; c != nil {
		addSpec(c.Lon)
		addSpec(c.Lat)
	}
	if f := m.spec.Filter; f != nil {
		for _, c := range append(append([]Condition{}, f.SkipIf...), f.KeepIf...) {
			if c.Column != "" {
				set[c.Column] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for c := range set {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}
