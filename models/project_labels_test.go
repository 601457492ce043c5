package models

import "testing"

// The embedded project's documented columns give the marts' Chinese labels.
func TestColumnLabels(t *testing.T) {
	p, err := Config{}.LoadProject()
	if err != nil {
		t.Fatal(err)
	}
	l := p.ColumnLabels()
	if got := l["marts.enterprise_risk_daily"]["as_of_date"]; got != "画像日期" {
		t.Errorf("marts.enterprise_risk_daily.as_of_date: %q, want 画像日期 (%d tables labelled)", got, len(l))
	}
}
