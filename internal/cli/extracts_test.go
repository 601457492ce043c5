package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"citybrain/pipelines/extracts"
	"citybrain/pipelines/extracts/extracttest"
	"citybrain/schemas"
	"citybrain/warehouse"
)

// TestExtractsCommands runs `citybrain extracts …` and `citybrain airflow
// dags` in-process on a lake with weather observations: run, reproduce
// with --as-of (byte-identical), list, show, history, and errors that say
// what to do.
func TestExtractsCommands(t *testing.T) {
	ctx := context.Background()
	tmp := t.TempDir()
	dataDir := filepath.Join(tmp, "data")
	lake, err := warehouse.Open(ctx, warehouse.DefaultConfig(), dataDir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	reg, _ := schemas.Builtin()
	ws, _ := reg.Get("weather")
	fill := func(n int, temp float64) int64 {
		id, err := extracttest.Fill(ctx, lake, ws, n, func(i int, r schemas.Record) {
			r[ws.Index("station")] = "官园"
			r[ws.Index("observed_at")] = time.Date(2026, 11, 27, i, 0, 0, 0, time.UTC)
			r[ws.Index("temperature_c")] = temp
		})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	snap1 := fill(24, 1.5)
	cfgPath := filepath.Join(tmp, "citybrain.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`data_dir: %s
extracts:
  definitions:
    - name: weather_daily
      department: water
      source: {table: raw.weather}
      columns: [station, observed_at, temperature_c]
      format: parquet
      schedule: {cron: "0 6 * * *"}
`, dataDir)), 0o644)
	run := func(args ...string) (string, string, error) {
		var out, errOut bytes.Buffer
		err := Run(ctx, append([]string{"--config", cfgPath}, args...), &out, &errOut)
		return out.String(), errOut.String(), err
	}
	out, _, err := run("extracts", "run", "weather_daily", "--period", "2026-11-28 06:00", "--json")
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	var m1 extracts.Manifest
	if err := json.Unmarshal([]byte(out), &m1); err != nil || m1.Rows != 24 || m1.Snapshots["raw.weather"] != snap1 {
		t.Fatalf("manifest %s (%v)", out, err)
	}
	// Keep the first manifest: the next run of the same period replaces the
	// file and the manifest beside it.
	manifest := filepath.Join(tmp, "first.manifest.json")
	mb, err := os.ReadFile(filepath.Join(dataDir, "extracts", "weather_daily", m1.File+".manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(manifest, mb, 0o644)
	fill(24, 9) // new data: a new snapshot
	lake.Close()
	out, _, err = run("extracts", "run", "weather_daily", "--period", "2026-11-28T06:00:00+08:00", "--json")
	var m2 extracts.Manifest
	if err != nil || json.Unmarshal([]byte(out), &m2) != nil || m2.Rows != 48 || m2.SHA256 == m1.SHA256 {
		t.Fatalf("second run: %v %s", err, out)
	}
	out, _, err = run("extracts", "run", "weather_daily", "--as-of", manifest, "--no-deliver", "--no-progress")
	if err != nil {
		t.Fatalf("--as-of manifest: %v %s", err, out)
	}
	b, _ := os.ReadFile(filepath.Join(dataDir, "extracts", "weather_daily", m1.File))
	sum := sha256.Sum256(b)
	if hex.EncodeToString(sum[:]) != m1.SHA256 || !strings.Contains(out, m1.SHA256) {
		t.Errorf("--as-of did not reproduce the file: %s", out)
	}
	out, _, err = run("extracts", "run", "weather_daily", "--as-of", fmt.Sprint(snap1), "--period", "2026-11-28 06:00", "--no-progress")
	if err != nil || !strings.Contains(out, m1.SHA256) {
		t.Errorf("--as-of id: %v %s", err, out)
	}
	out, _, err = run("extracts", "list")
	if err != nil || !strings.Contains(out, "weather_daily") || !strings.Contains(out, "0 6 * * *") || !strings.Contains(out, "ok") {
		t.Errorf("list: %v\n%s", err, out)
	}
	out, _, err = run("extracts", "history", "weather_daily")
	if err != nil || strings.Count(out, "weather_daily.20261127T220000Z") != 4 {
		t.Errorf("history: %v\n%s", err, out)
	}
	out, _, err = run("extracts", "show", "weather_daily")
	if err != nil || !strings.Contains(out, "department: water") {
		t.Errorf("show: %v\n%s", err, out)
	}
	if _, _, err = run("extracts", "run", "nope"); err == nil || !strings.Contains(err.Error(), "extracts list") {
		t.Errorf("unknown extract: %v", err)
	}
	if _, _, err = run("extracts", "run", "weather_daily", "--as-of", "12345", "--no-progress"); err == nil || !strings.Contains(err.Error(), "snapshot") {
		t.Errorf("unknown snapshot: %v", err)
	}
	if _, _, err = run("extracts", "run", "weather_daily", "--period", "tomorrow"); err == nil || !strings.Contains(err.Error(), "RFC 3339") {
		t.Errorf("bad period: %v", err)
	}
	dags := filepath.Join(tmp, "dags")
	out, _, err = run("airflow", "dags", "--out", dags, "--binary", "/usr/local/bin/citybrain")
	if err != nil {
		t.Fatalf("airflow dags: %v", err)
	}
	files, _ := filepath.Glob(filepath.Join(dags, "*.py"))
	if len(files) != 2 {
		t.Errorf("dag files %v\n%s", files, out)
	}
	for _, args := range [][]string{{"extracts", "--help"}, {"extracts", "run", "--help"}, {"airflow", "trigger", "--help"}, {"airflow", "watch", "--help"}, {"airflow", "dags", "--help"}} {
		if out, _, err := run(args...); err != nil || !strings.Contains(out, "Usage") {
			t.Errorf("%v: %v", args, err)
		}
	}
}

func TestParsePeriod(t *testing.T) {
	sh, _ := time.LoadLocation("Asia/Shanghai")
	want := time.Date(2026, 11, 28, 6, 0, 0, 0, sh)
	for _, s := range []string{"2026-11-27 22:00:00+00:00", "2026-11-27T22:00:00Z", "2026-11-28T06:00:00+08:00", "2026-11-28 06:00", "2026-11-28 06:00:00", "2026-11-27 22:00:00.000000+00:00"} {
		got, err := parsePeriod(s, sh)
		if err != nil || !got.Equal(want) {
			t.Errorf("%q: %s %v", s, got, err)
		}
	}
	if _, err := parsePeriod("None", sh); err == nil {
		t.Error("None accepted")
	}
}
