package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/text/encoding/simplifiedchinese"
)

// TestConnectorsCheckSamples: the Guanyuan file with its station in
// Chinese, saved as GB18030 but declared utf-8, and two rows with a wind
// direction outside the enum. connectors check reads it as ingestion would:
// it fails (most rows would be dead-lettered) and counts the problems by
// kind with an example line; declared gb18030, only the two enum rows are
// left, and the check passes.
func TestConnectorsCheckSamples(t *testing.T) {
	b, err := os.ReadFile(weatherCSV())
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(b), `"Guanyuan"`, `"官园"`)
	lines := strings.SplitAfter(text, "\n")
	for _, i := range []int{10, 20} {
		lines[i] = strings.Replace(lines[i], `"NNW"`, `"north-ish"`, 1)
		lines[i] = regexp.MustCompile(`,"[A-Z]+",`).ReplaceAllString(lines[i], `,"north-ish",`)
	}
	gb, err := simplifiedchinese.GB18030.NewEncoder().String(strings.Join(lines, ""))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "guanyuan-gb.csv")
	if err := os.WriteFile(path, []byte(gb), 0o644); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, weatherSourceYAML(t, "weather", path))
	out, _, err := e.try("connectors", "check", "--source", "weather", "--sample", "0")
	if err == nil {
		t.Fatalf("check passed a GB18030 file declared utf-8:\n%s", out)
	}
	for _, want := range []string{"FAILED", "sampled 抽查 35064 rows: 0 would land, 35064 would be dead-lettered", "文本不符合文件编码", "guanyuan-gb.csv#"} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	e.replace("encoding: utf-8", "encoding: gb18030")
	out, errOut, err := e.try("connectors", "check", "--source", "weather", "--sample", "0")
	if err != nil {
		t.Fatalf("check with the right encoding: %v\n%s\n%s", err, out, errOut)
	}
	t.Logf("check:\n%s", out)
	if !strings.Contains(out, "35062 would land, 2 would be dead-lettered") || !strings.Contains(out, "2 × ") || !strings.Contains(out, "wind_direction") {
		t.Errorf("check output with the right encoding:\n%s", out)
	}
}
