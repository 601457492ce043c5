package extracts

import (
	"sort"
	"strings"
	"sync"

	"citybrain/schemas"
)

// Bilingual headers: a CSV or XLSX column named like a field of a lake
// table the extract reads gets the field's Chinese label before its name
// ("观测时间 observed_at"), so that a department's staff read their own
// language and a program still finds the name. The labels are the fields'
// docs in schemas/*.yaml (raw.*) and, given as Runner.Labels, the models'
// column docs (marts.*), up to the first bracket or comma.

var (
	labelsOnce sync.Once
	labels     map[string]map[string]string // table → field → label
)

func tableLabels() map[string]map[string]string {
	labelsOnce.Do(func() {
		labels = map[string]map[string]string{}
		reg, err := schemas.Builtin()
		if err != nil {
			return // no labels: the headers are the names
		}
		for _, n := range reg.Names() {
			s, err := reg.Get(n)
			if err != nil {
				continue
			}
			m := map[string]string{}
			for _, f := range s.Fields {
				if l := shortLabel(f.Doc.ZH); l != "" {
					m[f.Name] = l
				}
			}
			labels[s.Table] = m
		}
	})
	return labels
}

// shortLabel is a field's Chinese doc up to its first bracket, comma or
// semicolon: "观测时间（小时起点）" → "观测时间".
func shortLabel(zh string) string {
	if i := strings.IndexAny(zh, "（(，,；;、"); i >= 0 {
		zh = zh[:i]
	}
	return strings.TrimSpace(zh)
}

// labelColumns labels each column named like a field of one of tables (the
// first table in name order that has it), from the schemas or more (table →
// column → Chinese description).
func labelColumns(cols []Column, tables []string, more map[string]map[string]string) {
	tables = append([]string(nil), tables...)
	sort.Strings(tables)
	byTable := tableLabels()
	for i := range cols {
		for _, t := range tables {
			l := byTable[t][cols[i].Name]
			if l == "" {
				l = shortLabel(more[t][cols[i].Name])
			}
			if l != "" {
				cols[i].Label = l
				break
			}
		}
	}
}
