package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"gopkg.in/yaml.v3"

	"citybrain/internal/auth"
)

// attempt is one entry of testdata/security.yaml (its header says what the
// fields mean).
type attempt struct {
	Area    string   `yaml:"area"`
	SQL     string   `yaml:"sql"`
	Via     string   `yaml:"via"`
	Expect  string   `yaml:"expect"`
	Analyst string   `yaml:"analyst"`
	Dept    string   `yaml:"dept"`
	HTTP    string   `yaml:"http"`
	SSE     string   `yaml:"sse"`
	As      []string `yaml:"as"`
	Present []string `yaml:"present"`
	Absent  []string `yaml:"absent"`
	Login   string   `yaml:"login"`
}

// deptUser is the department user of the suite (department water).
const deptUser = "dept_water"

func loadAttempts(t *testing.T) []attempt {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "security.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var as []attempt
	if err := yaml.Unmarshal(b, &as); err != nil {
		t.Fatal(err)
	}
	return as
}

// expectFor is what user (analyst or dept_water) must get from a SQL attempt.
func (a attempt) expectFor(user string) string {
	if user == deptUser && a.Dept != "" {
		return a.Dept
	}
	if user == "analyst" && a.Analyst != "" {
		return a.Analyst
	}
	return a.Expect
}

// sqlVias are the interfaces a SQL attempt runs over.
func (a attempt) sqlVias() []string {
	if a.Via != "" {
		return []string{a.Via}
	}
	return []string{"pgwire", "api_sql"}
}

// count is how many attempts the entry makes (users × interfaces).
func (a attempt) count() int {
	switch {
	case a.SQL != "":
		return 2 * len(a.sqlVias())
	case a.HTTP != "", a.SSE != "":
		return len(a.As)
	case a.Login != "":
		return 7 // 5 failures, the locked right password, the unlocked one
	}
	return 0
}

// outcome is what one SQL attempt got: an SQLSTATE, or the first value.
type outcome struct {
	code  string
	first any
	rows  int
	msg   string
}

// matches reports whether o is one of the alternatives of want.
func (o outcome) matches(want string) bool {
	for _, w := range strings.Split(want, "|") {
		switch w {
		case "ok":
			if o.code == "" {
				return true
			}
		case "none":
			if o.code == "" && o.rows == 0 {
				return true
			}
		case "zero":
			if o.code == "" && (o.rows == 0 || fmt.Sprint(o.first) == "0") {
				return true
			}
		case "null":
			if o.code == "" && o.rows == 1 && o.first == nil {
				return true
			}
		default:
			if o.code == w {
				return true
			}
		}
	}
	return false
}

// securityEnv is the running serve the suite attacks.
type securityEnv struct {
	base    string // http://127.0.0.1:PORT
	pgPort  int
	dataDir string
	tmp     string
	hc      *http.Client
}

func (e *securityEnv) fill(q string) string {
	return strings.NewReplacer("${TMP}", e.tmp, "${LAKE}", filepath.Join(e.dataDir, "lake"), "${DATA}", e.dataDir).Replace(q)
}

func (e *securityEnv) pgConnect(ctx context.Context, user, pw string) (*pgx.Conn, error) {
	return pgx.Connect(ctx, fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/citybrain?sslmode=disable", user, url.QueryEscape(pw), e.pgPort))
}

// pgRun runs q over the wire (simple protocol: the statement as a client
// types it) and returns its outcome.
func pgRun(ctx context.Context, c *pgx.Conn, q string) outcome {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rows, err := c.Query(ctx, q, pgx.QueryExecModeSimpleProtocol)
	var o outcome
	if err == nil {
		for rows.Next() {
			if o.rows == 0 {
				if v, err := rows.Values(); err == nil && len(v) > 0 {
					o.first = v[0]
				}
			}
			o.rows++
		}
		rows.Close()
		err = rows.Err()
	}
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			o.code, o.msg = pe.Code, pe.Message
		} else {
			o.code, o.msg = "client", err.Error()
		}
	}
	return o
}

// apiRun runs q with POST /api/sql as user.
func (e *securityEnv) apiRun(user, q string) outcome {
	body, _ := json.Marshal(map[string]any{"sql": q})
	req, _ := http.NewRequest("POST", e.base+"/api/sql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(user, auth.DemoPassword)
	resp, err := e.hc.Do(req)
	if err != nil {
		return outcome{code: "client", msg: err.Error()}
	}
	defer resp.Body.Close()
	var out struct {
		Code  string  `json:"code"`
		Error string  `json:"error"`
		Rows  [][]any `json:"rows"`
	}
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &out); err != nil {
		return outcome{code: "client", msg: fmt.Sprintf("HTTP %d: %.200s", resp.StatusCode, b)}
	}
	if resp.StatusCode != 200 {
		if out.Code == "" {
			out.Code = fmt.Sprintf("http%d", resp.StatusCode)
		}
		return outcome{code: out.Code, msg: out.Error}
	}
	o := outcome{rows: len(out.Rows)}
	if len(out.Rows) > 0 && len(out.Rows[0]) > 0 {
		o.first = out.Rows[0][0]
		if f, ok := o.first.(float64); ok && f == 0 {
			o.first = 0
		}
	}
	return o
}

var asUser = map[string]string{"dept": deptUser, "analyst": "analyst", "leader": "leader", "admin": "admin", "anonymous": ""}

func (e *securityEnv) request(method, path, user string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequest(method, e.base+path, body)
	if err != nil {
		return nil, err
	}
	if u := asUser[user]; u != "" {
		req.SetBasicAuth(u, auth.DemoPassword)
	}
	return e.hc.Do(req)
}

func checkBody(t *testing.T, what string, body []byte, a attempt) {
	t.Helper()
	for _, p := range a.Present {
		if !bytes.Contains(body, []byte(p)) {
			t.Errorf("%s: the answer lacks %q: %.300s", what, p, body)
		}
	}
	for _, p := range a.Absent {
		if i := bytes.Index(body, []byte(p)); i >= 0 {
			t.Errorf("%s: the answer shows %q: …%.200s…", what, p, body[max(0, i-100):])
		}
	}
}

// runSecuritySuite makes every attempt of testdata/security.yaml on the
// running serve at base (pgwire on pgPort) and fails on any that is not
// refused or scoped as the file says.
func runSecuritySuite(t *testing.T, base string, pgPort int, dataDir string) {
	e := &securityEnv{base: base, pgPort: pgPort, dataDir: dataDir, tmp: t.TempDir(), hc: &http.Client{Timeout: 60 * time.Second}}
	attempts := loadAttempts(t)
	ctx := context.Background()
	conns := map[string]*pgx.Conn{}
	for _, u := range []string{"analyst", deptUser} {
		c, err := e.pgConnect(ctx, u, auth.DemoPassword)
		if err != nil {
			t.Fatalf("pgwire as %s: %v", u, err)
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "SET statement_timeout = '3s'"); err != nil {
			t.Fatalf("SET statement_timeout as %s: %v", u, err)
		}
		conns[u] = c
	}
	n := 0
	for _, a := range attempts {
		n += a.count()
		switch {
		case a.SQL != "":
			q := e.fill(a.SQL)
			for _, u := range []string{"analyst", deptUser} {
				want := a.expectFor(u)
				for _, via := range a.sqlVias() {
					var o outcome
					if via == "pgwire" {
						o = pgRun(ctx, conns[u], q)
						if o.code == "client" { // the connection broke: say so, reconnect
							t.Errorf("%s over pgwire as %s broke the connection: %s", q, u, o.msg)
							c, err := e.pgConnect(ctx, u, auth.DemoPassword)
							if err != nil {
								t.Fatal(err)
							}
							c.Exec(ctx, "SET statement_timeout = '3s'")
							conns[u] = c
						}
					} else {
						o = e.apiRun(u, q)
					}
					if !o.matches(want) {
						t.Errorf("[%s] %s as %s over %s: got %s %v (%d rows) %q, want %s", a.Area, q, u, via, o.code, o.first, o.rows, o.msg, want)
					}
					if strings.HasPrefix(want, "42501") && o.code == "42501" && !strings.Contains(o.msg, "refused") && !strings.Contains(o.msg, "拒") && !strings.Contains(o.msg, "无权") {
						t.Errorf("%s as %s over %s: the refusal is not clear: %q", q, u, via, o.msg)
					}
				}
			}
		case a.HTTP != "":
			method, path, _ := strings.Cut(a.HTTP, " ")
			for _, as := range a.As {
				resp, err := e.request(method, path, as, nil)
				if err != nil {
					t.Errorf("%s as %s: %v", a.HTTP, as, err)
					continue
				}
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
				resp.Body.Close()
				if want := a.Expect; fmt.Sprint(resp.StatusCode) != want {
					t.Errorf("[%s] %s as %s: HTTP %d, want %s: %.300s", a.Area, a.HTTP, as, resp.StatusCode, want, body)
				}
				checkBody(t, a.HTTP+" as "+as, body, a)
			}
		case a.SSE != "":
			for _, as := range a.As {
				sctx, cancel := context.WithTimeout(ctx, 6*time.Second)
				req, _ := http.NewRequestWithContext(sctx, "GET", e.base+a.SSE, nil)
				req.SetBasicAuth(asUser[as], auth.DemoPassword)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					cancel()
					t.Errorf("%s as %s: %v", a.SSE, as, err)
					continue
				}
				body, _ := io.ReadAll(resp.Body) // until the deadline
				resp.Body.Close()
				cancel()
				if resp.StatusCode != 200 {
					t.Errorf("%s as %s: HTTP %d", a.SSE, as, resp.StatusCode)
				}
				checkBody(t, a.SSE+" as "+as, body, a)
			}
		case a.Login != "":
			e.tryLockout(t, a.Login)
		}
	}
	if n < 120 {
		t.Errorf("the suite makes %d attempts, want ≥ 120", n)
	}
	if ents, _ := os.ReadDir(e.tmp); len(ents) > 0 {
		t.Errorf("an attempt wrote %d file(s) to %s", len(ents), e.tmp)
	}
	t.Logf("security suite: %d attempts", n)
}

// tryLockout creates a user, fails its password 5 times over iface
// (pgwire, basic, web), checks that the right password is then refused as
// locked, lifts the lock as admin and logs in.
func (e *securityEnv) tryLockout(t *testing.T, iface string) {
	t.Helper()
	name, pw := "sec_"+iface, "Right-Password-"+iface
	body, _ := json.Marshal(map[string]string{"name": name, "password": pw, "role": "analyst"})
	resp, err := e.request("POST", "/api/admin/users", "admin", bytes.NewReader(body))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("create %s: %v %v", name, err, resp)
	}
	resp.Body.Close()
	ctx := context.Background()
	login := func(password string) (ok bool, msg string) {
		switch iface {
		case "pgwire":
			c, err := e.pgConnect(ctx, name, password)
			if err != nil {
				return false, err.Error()
			}
			c.Close(ctx)
			return true, ""
		case "basic":
			req, _ := http.NewRequest("GET", e.base+"/api/tables", nil)
			req.SetBasicAuth(name, password)
			resp, err := e.hc.Do(req)
			if err != nil {
				return false, err.Error()
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return resp.StatusCode == 200, fmt.Sprintf("%d %s", resp.StatusCode, b)
		default:
			b, _ := json.Marshal(map[string]string{"user": name, "password": password})
			resp, err := e.hc.Post(e.base+"/api/login", "application/json", bytes.NewReader(b))
			if err != nil {
				return false, err.Error()
			}
			rb, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return resp.StatusCode == 200, fmt.Sprintf("%d %s", resp.StatusCode, rb)
		}
	}
	for i := 0; i < 5; i++ {
		if ok, _ := login("wrong-password"); ok {
			t.Fatalf("%s: a wrong password logged in", iface)
		}
	}
	if ok, msg := login(pw); ok || !strings.Contains(msg, "锁定") {
		t.Errorf("%s: after 5 failures the right password: ok=%v %q, want refused as locked (锁定)", iface, ok, msg)
	}
	resp, err = e.request("DELETE", "/api/admin/locks/user:"+name, "admin", nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("unlock %s: %v %v", name, err, resp)
	}
	resp.Body.Close()
	if ok, msg := login(pw); !ok {
		t.Errorf("%s: after the admin lifted the lock: %s", iface, msg)
	}
}

// TestSecurityTableInDocs: docs/sql.md's table of attempts is the one
// testdata/security.yaml makes (CITYBRAIN_UPDATE_DOCS=1 rewrites it).
func TestSecurityTableInDocs(t *testing.T) {
	attempts := loadAttempts(t)
	table := securityTable(attempts)
	path := filepath.Join(repoRoot(), "docs", "sql.md")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?s)<!-- security-suite:begin -->.*<!-- security-suite:end -->`)
	want := "<!-- security-suite:begin -->\n" + table + "<!-- security-suite:end -->"
	if !re.Match(b) {
		t.Fatal("docs/sql.md has no <!-- security-suite:begin --> … <!-- security-suite:end --> section")
	}
	got := re.Find(b)
	if string(got) == want {
		return
	}
	if os.Getenv("CITYBRAIN_UPDATE_DOCS") != "" {
		if err := os.WriteFile(path, re.ReplaceAll(b, []byte(strings.ReplaceAll(want, "$", "$$"))), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Error("docs/sql.md's table of security attempts is out of date: CITYBRAIN_UPDATE_DOCS=1 go test -short -run TestSecurityTableInDocs ./internal/e2e/")
}

var expectWords = map[string]string{
	"42501": "42501 拒绝 refused", "53200": "53200 值过大 too large", "57014": "57014 超时 timeout",
	"42601": "42601 语法错误 syntax", "22023": "22023 参数无效 invalid", "ok": "runs 可执行",
	"zero": "0 — filtered 已过滤", "null": "NULL — hidden 不显示", "none": "no rows 无行",
}

func words(want string) string {
	var out []string
	for _, w := range strings.Split(want, "|") {
		if s, ok := expectWords[w]; ok {
			out = append(out, s)
		} else {
			out = append(out, w)
		}
	}
	return strings.Join(out, " or ")
}

// securityTable is the Markdown table of the attempts.
func securityTable(attempts []attempt) string {
	var b strings.Builder
	total := 0
	for _, a := range attempts {
		total += a.count()
	}
	fmt.Fprintf(&b, "%d attempts (%d entries; a SQL entry runs as `analyst` and as `dept_water`, over pgwire — with `statement_timeout` 3 s — and `/api/sql`, unless marked):\n\n", total, len(attempts))
	b.WriteString("| # | area 类别 | attempt 尝试 | as 身份 | expected 预期 |\n|---:|---|---|---|---|\n")
	esc := func(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "`", "ˋ") }
	for i, a := range attempts {
		var what, who, exp string
		switch {
		case a.SQL != "":
			what = "`" + esc(a.SQL) + "`"
			switch a.Via {
			case "pgwire":
				what += " (pgwire only)"
			case "api_sql":
				what += " (`/api/sql` only)"
			}
			who = "analyst, dept_water"
			if a.Analyst != "" || a.Dept != "" {
				exp = "analyst: " + words(a.expectFor("analyst")) + "; dept_water: " + words(a.expectFor(deptUser))
			} else {
				exp = words(a.Expect)
			}
		case a.HTTP != "", a.SSE != "":
			what = "`" + esc(a.HTTP) + "`"
			if a.SSE != "" {
				what = "`GET " + esc(a.SSE) + "` (event stream, 6 s)"
			}
			who = strings.Join(a.As, ", ")
			if a.Expect != "" {
				exp = "HTTP " + a.Expect
			}
			if len(a.Absent) > 0 {
				exp = strings.TrimPrefix(exp+"; without "+esc(strings.Join(a.Absent, ", ")), "; ")
			}
		case a.Login != "":
			what = "5 wrong passwords over " + a.Login + ", then the right one"
			who = "a new user"
			exp = "locked 已锁定 (the right password refused too); an admin lifts the lock; then it works"
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s |\n", i+1, a.Area, what, who, exp)
	}
	return b.String()
}
