package warnings

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"citybrain/internal/geo"
)

// Messages are read by leaders: figures rounded, ratios as percentages,
// units and responsible units in words — no rule codes in the Chinese.
func TestMessagesInWords(t *testing.T) {
	st, err := geo.LoadStreets()
	if err != nil {
		t.Fatal(err)
	}
	street := st.All()[2]
	f := func(x float64) *float64 { return &x }
	ascii := regexp.MustCompile(`[A-Za-z_:]{2,}`)
	for _, c := range []struct {
		tr             Transition
		wantZh, wantEn []string
	}{
		{Transition{SubjectNameZh: "西单商圈", SubjectNameEn: "Xidan", Kind: "crowd", Level: "orange", State: "raised", Metric: "capacity_ratio",
			Unit: "ratio", ObservedValue: f(0.75843), Threshold: f(0.7), ResponsibleUnit: "street:" + street.Adcode},
			[]string{"承载率 75.8 %", "阈值 70 %", "请" + street.NameZH + "办事处处置"}, []string{"75.8 %", street.NameEN + " office"}},
		{Transition{SubjectNameZh: "西直门桥", SubjectNameEn: "Xizhimen bridge", Kind: "traffic", Level: "yellow", State: "raised", Metric: "congestion_index",
			Unit: "index", ObservedValue: f(7.126), Threshold: f(6), ResponsibleUnit: "district:traffic"},
			[]string{"拥堵指数 7.1（阈值 6）", "请区交通委处置"}, []string{"congestion index 7.1 (threshold 6)", "District Transport Commission"}},
		{Transition{SubjectNameZh: "广安门外积水点", Kind: "waterlogging", Level: "blue", State: "raised", Metric: "water_depth",
			Unit: "m", ObservedValue: f(0.3512), Threshold: f(0.15), ResponsibleUnit: "district:water"},
			[]string{"积水深度 0.35 米", "请区水务局处置"}, []string{"water depth 0.35 m", "District Water Authority"}},
		{Transition{SubjectNameZh: "工人体育场", Kind: "crowd", Level: "red", State: "escalated", Predicted: true, HorizonMin: 30, Metric: "density",
			Unit: "人/m²", ForecastValue: f(4.04), Threshold: f(4), ObservedValue: f(3.2), ResponsibleUnit: "工人体育场管理方"},
			[]string{"预计 30 分钟后人员密度达 4 人/m²", "请工人体育场管理方处置"}, []string{"4 people/m²", "3.2 people/m²"}},
		{Transition{SubjectNameZh: "西单商圈", Kind: "crowd", Level: "yellow", State: "raised", Predicted: true, HorizonMin: 15, Metric: "capacity_ratio",
			Unit: "ratio", ForecastValue: f(0.83), Threshold: f(0.8), ObservedValue: f(0.71),
			Details: map[string]any{"exceed_probability": 0.62, "forecast_p10": 11800.0, "forecast_p90": 14900.0}},
			[]string{"达到阈值的概率约 62%（预测人数 80% 区间 11800–14900 人）。"}, []string{"Chance of reaching the threshold: about 62 % (80 % interval of the forecast: 11800–14900 people)."}},
	} {
		zh, en := messages(&c.tr)
		for _, w := range c.wantZh {
			if !strings.Contains(zh, w) {
				t.Errorf("zh %q: want %q", zh, w)
			}
		}
		for _, w := range c.wantEn {
			if !strings.Contains(en, w) {
				t.Errorf("en %q: want %q", en, w)
			}
		}
		if bad := ascii.FindAllString(zh, -1); len(bad) > 0 {
			t.Errorf("zh %q has codes %q", zh, bad)
		}
	}
	// Every responsible unit a rule names is in words.
	files, _ := filepath.Glob("rules/*.sql")
	bulk, _ := filepath.Glob("rules/bulk/*.sql")
	codes := map[string]bool{}
	for _, f := range append(files, bulk...) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`'(district:[a-z_]+)'`).FindAllStringSubmatch(string(b), -1) {
			codes[m[1]] = true
		}
	}
	if len(codes) < 3 {
		t.Fatalf("found %v in the rules", codes)
	}
	for code := range codes {
		if zh, en := responsibleWords(code); zh == code || en == code {
			t.Errorf("%s (named by a rule) has no name in words", code)
		}
	}
	for v, want := range map[float64]string{7.126: "7.1", 30172: "30172", 0.351: "0.35", 2: "2", 150.6: "151", -0.001: "0", 12.04: "12"} {
		if got := fmtVal(&v); got != want {
			t.Errorf("fmtVal(%v) = %q, want %q", v, got, want)
		}
	}
}
