package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"citybrain/internal/app"
	"citybrain/internal/auth"
	"citybrain/internal/sim"
)

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestMakeRunConfigSimulator runs the binary's serve with the repository's
// own citybrain.yaml (the make run configuration) — only ports, the data
// directory and the length of history changed — and checks that all eight
// department sources commit simulated data to the lake, that the ground
// truth is written, and that the HTTP feeds answer as their protocols say.
func TestMakeRunConfigSimulator(t *testing.T) {
	if testing.Short() {
		t.Skip("runs serve with the simulator for about a minute")
	}
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join(repoRoot(), "citybrain.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	httpPort, mqttPort := freePort(t), freePort(t)
	cfg := string(b)
	for _, r := range [][2]string{
		{"addr: 127.0.0.1:8080", fmt.Sprintf("addr: 127.0.0.1:%d", httpPort)},
		{"embedded_port: 19092", "embedded_port: 0"},
		{"data_dir: data", "data_dir: " + filepath.Join(dir, "data")},
		{"backfill_days: 7", "backfill_days: 2"},
		{"out_dir: data/sim", "out_dir: data/sim\n  weather_file: " + weatherCSV() + fmt.Sprintf("\n  mqtt: {addr: \"127.0.0.1:%d\"}", mqttPort)},
		{"(MQTT, embedded broker)\n    enabled: true", fmt.Sprintf("(MQTT, embedded broker)\n    enabled: true\n    mqtt: {broker: \"tcp://127.0.0.1:%d\"}", mqttPort)},
	} {
		if !strings.Contains(cfg, r[0]) {
			t.Fatalf("citybrain.yaml has no %q", r[0])
		}
		cfg = strings.Replace(cfg, r[0], r[1], 1)
	}
	cfg = strings.ReplaceAll(cfg, "127.0.0.1:8080/sim", fmt.Sprintf("127.0.0.1:%d/sim", httpPort))
	pgPort := freePort(t)
	cfg += fmt.Sprintf("sql_access:\n  pgwire: {listen: \"127.0.0.1:%d\"}\n", pgPort)
	cfgPath := filepath.Join(dir, "citybrain.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "serve.log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "--config", cfgPath, "serve")
	cmd.Dir = dir // relative paths (data/sim/…) as make run sees them
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); f.Close(); close(done) }()
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); <-done })
	logTail := func() string {
		b, _ := os.ReadFile(logPath)
		if len(b) > 5000 {
			b = b[len(b)-5000:]
		}
		return string(b)
	}
	status := func() map[string]app.SourceStatus {
		c := exec.Command(binary, "--config", cfgPath, "status", "--json")
		c.Dir = dir
		var out bytes.Buffer
		c.Stdout = &out
		if err := c.Run(); err != nil {
			return nil
		}
		var st []app.SourceStatus
		if json.Unmarshal(out.Bytes(), &st) != nil {
			return nil
		}
		m := map[string]app.SourceStatus{}
		for _, s := range st {
			m[s.Source] = s
		}
		return m
	}
	// status opens the embedded broker's log itself when no serve runs yet:
	// wait for serve's banner so that the two never open it at once
	started := func() bool { b, _ := os.ReadFile(logPath); return bytes.Contains(b, []byte("Stop with Ctrl-C")) }
	for end := time.Now().Add(2 * time.Minute); !started(); time.Sleep(200 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("serve did not start:\n%s", logTail())
		}
		select {
		case <-done:
			t.Fatalf("serve exited:\n%s", logTail())
		default:
		}
	}
	eight := []string{"weather", "emergency", "planning", "traffic", "police", "city_management", "water", "mobile_signal"}
	start := time.Now()
	deadline := start.Add(6 * time.Minute)
	var last map[string]app.SourceStatus
	for {
		select {
		case <-done:
			t.Fatalf("serve exited:\n%s", logTail())
		default:
		}
		last = status()
		ok := last != nil
		for _, s := range eight {
			ok = ok && last[s].Rows > 0 && !last[s].LastCommit.IsZero() && last[s].Rejects == 0
		}
		if ok || time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Second)
	}
	for _, s := range eight {
		st := last[s]
		if st.Rows == 0 || st.LastCommit.IsZero() {
			t.Errorf("source %s: %d rows, last commit %v — want simulated data in the lake", s, st.Rows, st.LastCommit)
		}
		if st.Rejects != 0 {
			t.Errorf("source %s: %d dead letters", s, st.Rejects)
		}
	}
	if t.Failed() {
		t.Fatalf("status %+v\nlog:\n%s", last, logTail())
	}
	t.Logf("all eight sources committed %.0f s after start", time.Since(start).Seconds())
	// the lake holds what the simulator produced: its streets, its venues, the eight tables
	sqlInt := func(q string) int64 {
		c := exec.Command(binary, "--config", cfgPath, "sql", "--format", "csv", q)
		c.Dir = dir
		out, err := c.Output()
		if err != nil {
			t.Fatalf("sql %q: %v", q, err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		var n int64
		fmt.Sscan(lines[len(lines)-1], &n)
		return n
	}
	if n := sqlInt("select count(distinct street_code) from raw.mobile_signal m join raw.grid_cells g using (grid_cell_id)"); n != 15 {
		t.Errorf("mobile signal covers %d streets, want 15", n)
	}
	if n := sqlInt("select count(*) from raw.incidents where street_code is null"); n != 0 {
		t.Errorf("%d simulated emergency calls outside Xicheng", n)
	}
	if n := sqlInt("select count(*) from raw.city_events where street_code like '110102%'"); n == 0 {
		t.Error("no 12345 event located in a Xicheng street")
	}
	gt, err := sim.ReadGroundTruth(filepath.Join(dir, "data", "sim", sim.GroundTruthFile))
	if err != nil {
		t.Fatal(err)
	}
	var surge *sim.Incident
	for i := range gt {
		if gt[i].Kind == sim.KindCrowdSurge && surge == nil {
			surge = &gt[i]
		}
	}
	if surge == nil {
		t.Fatalf("no crowd surge in the ground truth of two simulated days: %+v", gt)
	}
	// the injected surge is in the lake: people in the venue's cells at its peak
	q := fmt.Sprintf("select coalesce(sum(people_count), 0) from raw.mobile_signal where window_start = '%s'::timestamptz and grid_cell_id in ('%s')",
		surge.Peak.Truncate(5*time.Minute).Format(time.RFC3339), strings.Join(surge.GridCellIDs, "','"))
	var got int64
	for end := time.Now().Add(4 * time.Minute); time.Now().Before(end); time.Sleep(3 * time.Second) {
		if got = sqlInt(q); got > 0 {
			break
		}
	}
	if d := float64(got-int64(surge.PeakPeople)) / float64(surge.PeakPeople); d > 0.12 || d < -0.12 {
		t.Errorf("%s: %d people in the lake at the peak, ground truth says %d", surge.ID, got, surge.PeakPeople)
	}
	// Open311: the endpoint answers GeoReport v2 JSON to a logged-in user
	// (the connectors send the simulator's token)
	req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d%s?page_size=2", httpPort, sim.Open311Path), nil)
	req.SetBasicAuth("leader", auth.DemoPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var reqs []map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&reqs); err != nil || len(reqs) != 2 || reqs[0]["service_request_id"] == nil {
		t.Errorf("Open311 requests.json: %v %v", err, reqs)
	}

	// The security regression suite, on this serve (issue #19.6).
	t.Run("security", func(t *testing.T) {
		runSecuritySuite(t, fmt.Sprintf("http://127.0.0.1:%d", httpPort), pgPort, filepath.Join(dir, "data"))
	})
}
