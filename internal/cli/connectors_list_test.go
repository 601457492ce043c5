package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestConnectorsListPoll: `connectors list` shows the interval serve uses —
// poll_interval when set, the 1 min default when not (not "0s").
func TestConnectorsListPoll(t *testing.T) {
	tmp := t.TempDir()
	cfg := filepath.Join(tmp, "citybrain.yaml")
	os.WriteFile(cfg, []byte(`data_dir: `+filepath.Join(tmp, "data")+`
sources:
  - name: mobile_signal
    poll_interval: 5s
  - name: station_weather
    schema: weather
    transport: file
    file: {paths: [feeds/*.csv]}
`), 0o644)
	var out, errOut bytes.Buffer
	if err := Run(context.Background(), []string{"--config", cfg, "connectors", "list"}, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	for _, re := range []string{`(?m)^mobile_signal\s.*\s5s$`, `(?m)^station_weather\s.*\s1m0s$`} {
		if !regexp.MustCompile(re).MatchString(out.String()) {
			t.Errorf("no %s in:\n%s", re, out.String())
		}
	}
}
