package extracts

import "testing"

// Labels come from the schemas for raw.* and from the given descriptions
// (the models') for marts.*, shortened at the first bracket; a column no
// table documents keeps its name.
func TestLabelColumns(t *testing.T) {
	cols := []Column{{Name: "enterprise_id"}, {Name: "observed_at"}, {Name: "risk_level"}, {Name: "n"}}
	labelColumns(cols, []string{"raw.weather", "marts.enterprise_risk"}, map[string]map[string]string{
		"marts.enterprise_risk": {"enterprise_id": "单位编号", "risk_level": "风险等级（四色）"},
	})
	want := []string{"单位编号 enterprise_id", "观测时间 observed_at", "风险等级 risk_level", "n"}
	for i, c := range cols {
		if c.Heading() != want[i] {
			t.Errorf("column %d: %q, want %q", i, c.Heading(), want[i])
		}
	}
}
