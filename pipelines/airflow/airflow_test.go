package airflow

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"citybrain/internal/testenv"
	"citybrain/pipelines/extracts"
	"citybrain/pipelines/extracts/extracttest"
	"citybrain/schemas"
	"citybrain/warehouse"
)

var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	binErr    error
)

// buildCitybrain builds the citybrain binary once for all the tests of the
// package (TestMain removes it).
func buildCitybrain(t *testing.T) string {
	buildOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "citybrain-airflow-bin-"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "citybrain")
		if out, err := exec.Command("go", "build", "-o", binPath, "citybrain/cmd/citybrain").CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// AirflowVersion is the Apache Airflow the integration test installs from
// PyPI. Its dependencies are pinned by testdata/airflow-constraints.txt
// (a pip freeze of a working install on Python 3.11; Airflow's own
// constraint files live on GitHub, which the machines cannot reach).
// cadwyn is pinned below the release that needs a newer FastAPI than
// Airflow 3.3.2 allows, which otherwise sends pip's resolver backtracking.
const AirflowVersion = "3.3.2"

func TestDagsGenerated(t *testing.T) {
	defs := []extracts.Definition{
		{Name: "water_daily", Department: "water", Format: "csv", Schedule: extracts.ScheduleConfig{Cron: "0 6 * * *"}},
		{Name: "police_daily", Department: "police", Format: "xlsx", Schedule: extracts.ScheduleConfig{Cron: "0 6 * * *", Timezone: "Asia/Shanghai"}},
		{Name: "hourly-x", Department: "water", Format: "parquet", Schedule: extracts.ScheduleConfig{Cron: "@hourly", Timezone: "UTC"}},
		{Name: "adhoc", Department: "water", Format: "csv"},
	}
	files, err := Dags(defs, DagOptions{Binary: "/opt/city brain/citybrain", Config: "/etc/citybrain.yaml", Retries: 2, RetryDelaySeconds: 60, ModelsCron: "*/15 * * * *"})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 {
		t.Fatalf("%d files, want 3 (two schedules + models)", len(files))
	}
	daily := files[0]
	if daily.DagID != "citybrain_extracts_0_6_x_x_x_asia_shanghai" || strings.Join(daily.Tasks, ",") != "police_daily,water_daily" {
		t.Errorf("daily DAG %s tasks %v", daily.DagID, daily.Tasks)
	}
	body := string(daily.Body)
	for _, want := range []string{
		`schedule="0 6 * * *"`, `tz="Asia/Shanghai"`, `catchup=False`, `max_active_runs=1`,
		`'/opt/city brain/citybrain' --config /etc/citybrain.yaml extracts run water_daily --trigger airflow --no-progress --period \"{{ data_interval_end or logical_date or '' }}\"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("daily DAG lacks %s:\n%s", want, body)
		}
	}
	if files[1].DagID != "citybrain_extracts_at_hourly_utc" || files[2].DagID != ModelsDagID || !strings.Contains(string(files[2].Body), "models run") {
		t.Errorf("DAGs %s, %s", files[1].DagID, files[2].DagID)
	}
	if _, err := Dags(defs, DagOptions{}); err == nil {
		t.Error("no binary: want an error")
	}
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// airflowFlavour is what differs between the Airflow generations the
// integration test runs: how to start it, where it answers, how to log in.
type airflowFlavour struct {
	version     string
	constraints string // testdata file pinning the dependencies
	api         API
	// env is the standalone's environment beyond AIRFLOW_HOME and the dags
	// folder; port is the API server's (Airflow 3) or webserver's (Airflow 2).
	env    func(t *testing.T, home string, port int) []string
	health string // path answering 200 once the server is up
	// password returns the admin password once the server is up.
	password func(home string) (string, error)
}

const airflow3Password = "citybrain-airflow-test"

var airflow3 = airflowFlavour{
	version: AirflowVersion, constraints: "testdata/airflow-constraints.txt", api: APIv2,
	env: func(t *testing.T, home string, port int) []string {
		pwFile := filepath.Join(home, "passwords.json")
		os.WriteFile(pwFile, []byte(`{"admin": "`+airflow3Password+`"}`), 0o600)
		return []string{
			"AIRFLOW__API__HOST=127.0.0.1",
			"AIRFLOW__API__PORT=" + strconv.Itoa(port),
			// Task runners reach the API server's execution API here (default :8080).
			// A busy 2-core machine answers slower than the 5 s default.
			"AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT=60",
			"AIRFLOW__CORE__EXECUTION_API_SERVER_URL=" + fmt.Sprintf("http://127.0.0.1:%d/execution/", port),
			"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=admin:admin",
			"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=" + pwFile,
			"AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=3",
			"AIRFLOW__CORE__EXECUTOR=LocalExecutor",
		}
	},
	health:   "/api/v2/monitor/health",
	password: func(string) (string, error) { return airflow3Password, nil },
}

// Airflow2Version is the Airflow 2 release the test also runs (the /api/v1
// path of the client, with basic auth); testdata/airflow2-constraints.txt
// pins its dependencies the same way.
const Airflow2Version = "2.11.2"

var airflow2 = airflowFlavour{
	version: Airflow2Version, constraints: "testdata/airflow2-constraints.txt", api: APIv1,
	env: func(t *testing.T, home string, port int) []string {
		return []string{
			"AIRFLOW__WEBSERVER__WEB_SERVER_HOST=127.0.0.1",
			"AIRFLOW__WEBSERVER__WEB_SERVER_PORT=" + strconv.Itoa(port),
			// The stable REST API with basic auth (Airflow 2 denies it by default).
			"AIRFLOW__API__AUTH_BACKENDS=airflow.api.auth.backend.basic_auth",
			"AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL=3",
			"AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL=3",
			// SQLite allows only the sequential executor on Airflow 2.
		}
	},
	health: "/api/v1/health",
	// airflow standalone makes the admin user and writes its password here.
	password: func(home string) (string, error) {
		b, err := os.ReadFile(filepath.Join(home, "standalone_admin_password.txt"))
		return strings.TrimSpace(string(b)), err
	},
}

// TestAirflowRunsExtract installs Apache Airflow from PyPI (cached venv),
// starts it on 127.0.0.1 (airflow standalone: API server, scheduler, DAG
// processor, triggerer; SQLite; the simple auth manager with a known
// password), writes the generated DAGs into its dags folder, and then,
// through this package's client only, waits for the DAG, unpauses it,
// triggers a run for a scheduled period and watches it to success. The
// task runs the real citybrain binary, whose delivered file and manifest
// are then checked.
func TestAirflowRunsExtract(t *testing.T) {
	if testing.Short() {
		t.Skip("installs and starts Apache Airflow (skipped with -short)")
	}
	runAirflowExtract(t, airflow3)
}

// TestAirflow2RunsExtract does the same on Airflow 2 (webserver, /api/v1,
// basic auth, the sequential executor on SQLite).
func TestAirflow2RunsExtract(t *testing.T) {
	if testing.Short() {
		t.Skip("installs and starts Apache Airflow 2 (skipped with -short)")
	}
	runAirflowExtract(t, airflow2)
}

func runAirflowExtract(t *testing.T, fl airflowFlavour) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	start := time.Now()
	constraints, err := filepath.Abs(fl.constraints)
	if err != nil {
		t.Fatal(err)
	}
	py, err := testenv.PythonVenv(ctx, "airflow-"+fl.version, "apache-airflow=="+fl.version, "--constraint="+constraints)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("airflow venv ready in %s", time.Since(start).Round(time.Second))
	start = time.Now()

	tmp := t.TempDir()
	binary := buildCitybrain(t)
	t.Logf("citybrain built in %s", time.Since(start).Round(time.Second))
	start = time.Now()

	// A data directory with weather observations in the lake and an extract
	// for the water department delivered to a folder.
	dataDir := filepath.Join(tmp, "data")
	delivered := filepath.Join(tmp, "delivered")
	wcfg := warehouse.DefaultConfig()
	lake, err := warehouse.Open(ctx, wcfg, dataDir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	reg, _ := schemas.Builtin()
	ws, _ := reg.Get("weather")
	t0 := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	snap, err := extracttest.Fill(ctx, lake, ws, 48, func(i int, r schemas.Record) {
		r[ws.Index("station")] = "Guanyuan 官园"
		r[ws.Index("observed_at")] = t0.Add(time.Duration(i) * time.Hour)
		r[ws.Index("rain_mm")] = float64(i) / 10
		r[ws.Index("temperature_c")] = -2.5 + float64(i)/4
	})
	lake.Close()
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(tmp, "citybrain.yaml")
	cfgYAML := fmt.Sprintf(`data_dir: %s
extracts:
  scheduler: {enabled: false}
  definitions:
    - name: water_weather_daily
      title: 水务局每日气象
      department: water
      source: {table: raw.weather}
      columns: [station, observed_at, rain_mm, temperature_c]
      order_by: [observed_at]
      format: csv
      encoding: gb18030
      schedule: {cron: "0 6 * * *", timezone: Asia/Shanghai}
      delivery:
        - {type: dir, path: %s}
`, dataDir, delivered)
	if err := os.WriteFile(cfgPath, []byte(cfgYAML), 0o644); err != nil {
		t.Fatal(err)
	}

	home := filepath.Join(tmp, "airflow")
	dags := filepath.Join(home, "dags")
	out, err := exec.CommandContext(ctx, binary, "--config", cfgPath, "airflow", "dags", "--out", dags, "--binary", binary, "--models-cron", "").CombinedOutput()
	if err != nil {
		t.Fatalf("citybrain airflow dags: %v\n%s", err, out)
	}
	dagID := ExtractsDagID("0 6 * * *", "Asia/Shanghai")
	if _, err := os.Stat(filepath.Join(dags, dagID+".py")); err != nil {
		t.Fatalf("no DAG file: %v\n%s", err, out)
	}

	// Airflow standalone on a free loopback port.
	port := freePort(t)
	os.MkdirAll(home, 0o755)
	venvBin := filepath.Dir(py)
	cmd := exec.Command(filepath.Join(venvBin, "airflow"), "standalone")
	cmd.Env = append(os.Environ(),
		"PATH="+venvBin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"AIRFLOW_HOME="+home,
		"AIRFLOW__CORE__DAGS_FOLDER="+dags,
		"AIRFLOW__CORE__LOAD_EXAMPLES=False",
		// The log servers default to fixed ports on every interface.
		"AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT="+strconv.Itoa(freePort(t)),
		"AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT="+strconv.Itoa(freePort(t)),
		"AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC=1",
	)
	cmd.Env = append(cmd.Env, fl.env(t, home, port)...)
	logPath := filepath.Join(tmp, "airflow.log")
	logFile, _ := os.Create(logPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		// Airflow 2's scheduler starts its DAG processor manager in a
		// process group of its own: note the whole tree before stopping it.
		tree := descendants(cmd.Process.Pid)
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		// Stragglers of the group (Airflow 2's gunicorn workers) may still
		// write logs into home for a moment after the standalone exits.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		for _, pid := range tree {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		logFile.Close()
		for i := 0; i < 40; i++ {
			if os.RemoveAll(home) == nil {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
	}()
	logTail := func() string {
		b, _ := os.ReadFile(logPath)
		if len(b) > 6000 {
			b = b[len(b)-6000:]
		}
		return string(b)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	for {
		resp, err := http.Get(base + fl.health)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if ctx.Err() != nil || time.Since(start) > 10*time.Minute {
			t.Fatalf("Airflow did not start:\n%s", logTail())
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("airflow up after %s", time.Since(start).Round(time.Second))

	password, err := fl.password(home)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(base, "admin", password, "")
	if err != nil {
		t.Fatal(err)
	}
	bad, _ := NewClient(base, "admin", "wrong", fl.api)
	if _, err := bad.DAG(ctx, dagID); !errors.Is(err, ErrAuth) {
		t.Errorf("wrong password: %v, want ErrAuth", err)
	}
	v, err := c.Version(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if api, _ := c.API(ctx); api != fl.api || v.Version != fl.version {
		t.Errorf("api %s version %s", api, v.Version)
	}
	wctx, wcancel := context.WithTimeout(ctx, 3*time.Minute)
	d, err := c.WaitDAG(wctx, dagID, time.Second)
	wcancel()
	if err != nil {
		t.Fatalf("%v\n%s", err, logTail())
	}
	if !d.IsPaused || d.HasImportError || d.Schedule() != "0 6 * * *" {
		t.Errorf("DAG as parsed: %+v", d)
	}
	if d, err = c.SetPaused(ctx, dagID, false); err != nil || d.IsPaused {
		t.Fatalf("unpause: %+v %v", d, err)
	}
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	// A period before the one the scheduler runs itself on unpausing (the
	// latest with catchup off): Airflow 2 allows one run per logical date.
	period := time.Date(2026, 11, 27, 6, 0, 0, 0, shanghai)
	run, err := c.Trigger(ctx, dagID, TriggerRequest{RunID: "citybrain_test_" + strconv.FormatInt(time.Now().UnixNano(), 36), LogicalDate: &period})
	if err != nil {
		t.Fatal(err)
	}
	var states []string
	wctx, wcancel = context.WithTimeout(ctx, 4*time.Minute)
	run, err = c.Watch(wctx, dagID, run.RunID, time.Second, func(r DAGRun, tis []TaskInstance) {
		s := r.State
		for _, ti := range tis {
			s += " " + ti.TaskID + "=" + ti.StateString()
		}
		states = append(states, s)
	})
	wcancel()
	if err != nil || run.State != "success" {
		t.Fatalf("run %+v: %v\nstates %v\n%s", run, err, states, logTail())
	}
	t.Logf("run states: %v", states)

	// The delivered extract and its manifest, named by the scheduled time.
	file := filepath.Join(delivered, "water_weather_daily_20261127T0600.csv")
	b, err := os.ReadFile(file)
	if err != nil {
		ls, _ := os.ReadDir(delivered)
		t.Fatalf("delivered file: %v (dir has %v)", err, ls)
	}
	var m extracts.Manifest
	mb, err := os.ReadFile(file + ".manifest.json")
	if err != nil || json.Unmarshal(mb, &m) != nil {
		t.Fatalf("manifest: %v", err)
	}
	sum := sha256.Sum256(b)
	if m.SHA256 != hex.EncodeToString(sum[:]) || m.Rows != 48 || m.Trigger != "airflow" || m.Snapshots["raw.weather"] != snap || !m.Period.Equal(period) {
		t.Errorf("manifest %+v; file sha %x", m, sum)
	}
	if !bytes.Contains(b, []byte{0xB9, 0xD9, 0xD4, 0xB0}) { // 官园 in GB18030
		t.Errorf("delivered CSV is not GB18030: % x", b[:40])
	}
	t.Logf("Airflow test took %s", time.Since(start).Round(time.Second))
}

// descendants lists the processes below pid (children, their children, …)
// from /proc.
func descendants(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …; comm may hold spaces and parentheses.
		rest := string(b[bytes.LastIndexByte(b, ')')+1:])
		f := strings.Fields(rest)
		if len(f) < 2 {
			continue
		}
		if pp, err := strconv.Atoi(f[1]); err == nil {
			children[pp] = append(children[pp], p)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}
