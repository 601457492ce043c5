package extracts

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"citybrain/internal/testenv"
	"citybrain/pipelines/scheduler"
)

// readerRequirements are the independent readers of the outputs and the
// SMTP server mail is delivered to (pinned; PyPI).
var readerRequirements = []string{"openpyxl==3.1.5", "pyarrow==26.0.1", "aiosmtpd==1.4.6"}

func readersVenv(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("needs Python with openpyxl, pyarrow and aiosmtpd (skipped with -short)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	py, err := testenv.PythonVenv(ctx, "extracts-readers", readerRequirements...)
	if err != nil {
		t.Fatal(err)
	}
	return py
}

// readerScript opens each file with a reader that is not ours and prints
// its rows as text: openpyxl for XLSX, pyarrow for Parquet, Python's csv
// module with the gb18030 codec for GB18030 CSV.
const readerScript = `
import csv, datetime, json, sys, zoneinfo
import openpyxl, pyarrow.parquet as pq
sh = zoneinfo.ZoneInfo("Asia/Shanghai")
def cell(v):
    if v is None: return ""
    if isinstance(v, datetime.datetime):
        if v.tzinfo is not None: v = v.astimezone(sh)
        return v.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(v, float): return repr(v)
    return str(v)
out = {}
kind, path = sys.argv[1], sys.argv[2]
if kind == "xlsx":
    wb = openpyxl.load_workbook(path, read_only=True)
    ws = wb.worksheets[0]
    out["sheet"] = ws.title
    rows = list(ws.iter_rows(values_only=True))
    out["types"] = [type(v).__name__ for v in rows[1]]
    out["rows"] = [[cell(v) for v in r] for r in rows]
elif kind == "parquet":
    t = pq.read_table(path)
    out["types"] = [str(f.type) for f in t.schema]
    out["rows"] = [list(t.schema.names)] + [[cell(r[n]) for n in t.schema.names] for r in t.to_pylist()]
else:
    with open(path, encoding="gb18030", newline="") as f:
        out["rows"] = [r for r in csv.reader(f)]
json.dump(out, sys.stdout, ensure_ascii=False)
`

type readOut struct {
	Sheet string     `json:"sheet"`
	Types []string   `json:"types"`
	Rows  [][]string `json:"rows"`
}

func pyRead(t *testing.T, py, kind, path string) readOut {
	t.Helper()
	out, err := exec.Command(py, "-c", readerScript, kind, path).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("python %s reader: %v\n%s", kind, err, stderr)
	}
	var r readOut
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestIndependentReaders(t *testing.T) {
	py := readersVenv(t)
	e := newEnv(t)
	defs := []Definition{incidentsDef("c", "east", "csv", ""), incidentsDef("g", "east", "csv", "gb18030"),
		incidentsDef("x", "east", "xlsx", ""), incidentsDef("p", "east", "parquet", "")}
	r := e.runner(t, defs...)
	ctx := context.Background()
	paths := map[string]string{}
	for _, d := range defs {
		m, err := r.Run(ctx, d.Name, RunOptions{Period: period})
		if err != nil {
			t.Fatal(err)
		}
		paths[d.Name] = r.FilePath(m)
	}
	// What our UTF-8 CSV says (checked byte by byte in TestCSVEncodings),
	// read with encoding/csv; the others must say the same.
	b, _ := os.ReadFile(paths["c"])
	want, err := csv.NewReader(bytes.NewReader(b[3:])).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(want); i++ {
		want[i][7] = strings.TrimPrefix(want[i][7], "'") // the CSV's formula guard
	}
	x := pyRead(t, py, "xlsx", paths["x"])
	p := pyRead(t, py, "parquet", paths["p"])
	g := pyRead(t, py, "csv", paths["g"])
	for i := 1; i < len(g.Rows); i++ {
		g.Rows[i][7] = strings.TrimPrefix(g.Rows[i][7], "'")
	}
	if x.Sheet != sheetName {
		t.Errorf("sheet %q", x.Sheet)
	}
	if x.Types[1] != "datetime" || x.Types[0] != "str" {
		t.Errorf("xlsx cell types %v: want datetime cells for timestamps", x.Types)
	}
	if p.Types[1] != "timestamp[us, tz=UTC]" || p.Types[6] != "double" || p.Types[0] != "string" {
		t.Errorf("parquet types %v", p.Types)
	}
	// Parquet's columns are the names; the CSV's and the XLSX's headers
	// are bilingual ("警情编号 id").
	names := make([]string, len(want[0]))
	for i, h := range want[0] {
		names[i] = h[strings.LastIndex(h, " ")+1:]
	}
	if want[0][0] != "警情编号 id" {
		t.Errorf("csv header %q", want[0])
	}
	for name, got := range map[string][][]string{"xlsx (openpyxl)": x.Rows, "parquet (pyarrow)": p.Rows, "gb18030 csv (python)": g.Rows} {
		if len(got) != len(want) {
			t.Errorf("%s: %d rows, want %d", name, len(got), len(want))
			continue
		}
		for i := range want {
			w := want[i]
			if i == 0 && strings.HasPrefix(name, "parquet") {
				w = names
			}
			if strings.Join(got[i], "|") != strings.Join(w, "|") {
				t.Errorf("%s row %d:\n got %q\nwant %q", name, i, got[i], w)
				break
			}
		}
	}
}

func TestDeliverHTTPWithRetries(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an HTTP server")
	}
	var mu sync.Mutex
	calls := 0
	var got []byte
	var gotManifest Manifest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls <= 2 {
			http.Error(w, "department gateway busy", http.StatusServiceUnavailable)
			return
		}
		if req.Header.Get("Authorization") != "Bearer dept-token" {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		mr, err := req.MultipartReader()
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		for {
			part, err := mr.NextPart()
			if err != nil {
				break
			}
			b, _ := io.ReadAll(part)
			switch part.FormName() {
			case "file":
				got = b
			case "manifest":
				json.Unmarshal(b, &gotManifest)
			}
		}
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	e := newEnv(t)
	d := incidentsDef("h", "east", "parquet", "")
	t.Setenv("DEPT_TOKEN", "dept-token")
	d.Delivery = []Delivery{{Type: "http", URL: srv.URL + "/upload", Retries: 3, Headers: map[string]string{"Authorization": "Bearer ${DEPT_TOKEN}"}}}
	fail := incidentsDef("h2", "east", "csv", "")
	fail.Delivery = []Delivery{{Type: "http", URL: srv.URL + "/upload", Retries: 1}}
	r := e.runner(t, d, fail)
	m, err := r.Run(context.Background(), "h", RunOptions{Period: period})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 3 || m.Deliveries[0].Attempts != 3 || m.Deliveries[0].Status != "ok" {
		t.Errorf("calls %d, delivery %+v: want success on the 3rd attempt", calls, m.Deliveries[0])
	}
	if sha(got) != m.SHA256 || gotManifest.SHA256 != m.SHA256 || gotManifest.Rows != 250 {
		t.Errorf("received file sha %s, manifest %+v; want %s", sha(got), gotManifest.SHA256, m.SHA256)
	}
	// Out of retries: the run fails and says why.
	calls = 0
	m2, err := r.Run(context.Background(), "h2", RunOptions{Period: period})
	if err == nil || m2.Deliveries[0].Attempts != 2 || !strings.Contains(m2.Deliveries[0].Error, "503") {
		t.Errorf("h2: err %v, delivery %+v; want failure after 2 attempts with the 503", err, m2.Deliveries)
	}
	// A refusal (401: no token) is not retried.
	fail.Name, fail.Delivery[0].Retries = "h3", 5
	r3 := e.runner(t, fail)
	m3, err := r3.Run(context.Background(), "h3", RunOptions{Period: period})
	if err == nil || m3.Deliveries[0].Attempts != 1 || !strings.Contains(m3.Deliveries[0].Error, "401") {
		t.Errorf("h3: err %v, delivery %+v; want one attempt refused with 401", err, m3.Deliveries)
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

func TestDeliverMail(t *testing.T) {
	py := readersVenv(t)
	port := freePort(t)
	box := t.TempDir()
	for _, sub := range []string{"tmp", "new", "cur"} { // a Maildir
		os.MkdirAll(filepath.Join(box, sub), 0o755)
	}
	cmd := exec.Command(py, "-m", "aiosmtpd", "-n", "-l", "127.0.0.1:"+strconv.Itoa(port), "-c", "aiosmtpd.handlers.Mailbox", box)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("aiosmtpd did not start: %s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	e := newEnv(t)
	d := incidentsDef("m", "east", "xlsx", "")
	d.Title = "东片警情日报"
	d.Delivery = []Delivery{{Type: "mail", To: []string{"duty@east.example", "chief@east.example"}}}
	cfg := DefaultConfig()
	cfg.Definitions = []Definition{d}
	cfg.SMTP = SMTPConfig{Host: "127.0.0.1", Port: port, From: "citybrain@xicheng.example"}
	r, err := NewRunner(cfg, e.out, e.eng, e.lake, e.store, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := r.Run(context.Background(), "m", RunOptions{Period: period})
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for time.Now().Before(deadline) {
		files, _ = filepath.Glob(filepath.Join(box, "new", "*"))
		if len(files) > 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(files) != 1 {
		t.Fatalf("%d messages in the mailbox, want 1; server log:\n%s", len(files), logs.String())
	}
	raw, _ := os.ReadFile(files[0])
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	subj, _ := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if !strings.Contains(subj, "东片警情日报") {
		t.Errorf("subject %q", subj)
	}
	if to := msg.Header.Get("To"); !strings.Contains(to, "chief@east.example") {
		t.Errorf("To %q", to)
	}
	_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	var attached []byte
	for {
		part, err := mr.NextPart()
		if err != nil {
			break
		}
		if part.FileName() == m.File {
			b, _ := io.ReadAll(part)
			attached, _ = base64.StdEncoding.DecodeString(strings.NewReplacer("\r", "", "\n", "").Replace(string(b)))
		}
	}
	if attached == nil {
		t.Fatalf("no attachment named %s", m.File)
	}
	if sha(attached) != m.SHA256 {
		t.Errorf("attachment sha %s, want %s", sha(attached), m.SHA256)
	}
	// The attachment opens in Excel's format: check it with openpyxl too.
	p := filepath.Join(t.TempDir(), "att.xlsx")
	os.WriteFile(p, attached, 0o644)
	if x := pyRead(t, py, "xlsx", p); len(x.Rows) != 251 {
		t.Errorf("attachment has %d rows", len(x.Rows))
	}
}

// TestScheduledRetryUntilDelivered: the department's endpoint is down for
// the first two scheduled attempts; the scheduler retries the extract with
// backoff (fake clock) and the third attempt delivers. One file, one
// successful delivery, the failures in the history.
func TestScheduledRetryUntilDelivered(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an HTTP server")
	}
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls <= 2 {
			http.Error(w, "maintenance", http.StatusBadGateway)
			return
		}
		io.Copy(io.Discard, req.Body)
	}))
	defer srv.Close()
	e := newEnv(t)
	d := incidentsDef("retry", "west", "csv", "gb18030")
	d.Delivery = []Delivery{{Type: "http", URL: srv.URL}}
	r := e.runner(t, d)
	clk := scheduler.NewFakeClock(time.Date(2026, 11, 27, 21, 0, 0, 0, time.UTC))
	cfg := scheduler.DefaultConfig()
	cfg.MaxRetries, cfg.Backoff = 3, time.Minute
	s := scheduler.New(cfg, r.Ledger(), clk, nil)
	jobs, _ := r.Jobs()
	s.Add(jobs[0])
	ctx := context.Background()
	s.Tick(ctx)
	clk.Set(time.Date(2026, 11, 27, 22, 0, 30, 0, time.UTC)) // 06:00:30 Beijing
	runs, err := s.Tick(ctx)
	if err != nil || len(runs) != 1 || runs[0].Status != "ok" || runs[0].Attempts != 3 {
		t.Fatalf("runs %+v %v: want ok after 3 attempts", runs, err)
	}
	if w := clk.Waits(); len(w) != 2 || w[0] != time.Minute || w[1] != 2*time.Minute {
		t.Errorf("backoff waits %v, want [1m 2m]", w)
	}
	h, _ := r.History("retry", 0)
	if len(h) != 3 || h[0].Status != "ok" || h[1].Status != "failed" || !strings.Contains(h[1].Error, "502") {
		t.Errorf("history %d entries: %+v", len(h), h)
	}
	files, _ := filepath.Glob(filepath.Join(e.out, "retry", "*.csv"))
	if len(files) != 1 || filepath.Base(files[0]) != "retry_20261128T0600.csv" {
		t.Errorf("files %v", files)
	}
}
