package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"citybrain/internal/instances"
	"citybrain/internal/testenv"
)

// TestRoles runs the platform as two instances with different roles
// (issue #23, docs/roles.md) against real Apache Kafka and the SQL catalog
// on PostgreSQL: ingest-1 runs connectors and lake writers, serve-1 the
// models, warnings, query layer and dashboards. The data flows from one to
// the other through Kafka and the lake; each instance runs only its roles'
// parts; both list both instances, with their paths, as one platform; a
// kill -9 of ingest-1 shows it down on serve-1 within three heartbeats.
// serve refuses a subset of roles on the embedded broker.
func TestRoles(t *testing.T) {
	bootstrap := realKafka(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	pgDir, err := os.MkdirTemp("", "cbpg-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(pgDir)
	pg, err := testenv.StartPostgres(ctx, pgDir)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Stop()
	t.Setenv("CITYBRAIN_CATALOG_DSN", pg.DSN())

	src := "weather_roles_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	lakeDir := filepath.Join(t.TempDir(), "lake")
	mk := func() *env {
		e := newEnv(t, weatherSourceYAML(t, src, weatherCSV()))
		e.replace("broker: {embedded_port: 0}\n", fmt.Sprintf("broker: {bootstrap: [%q]}\n", bootstrap))
		e.replace("warehouse:\n", fmt.Sprintf("warehouse:\n  dir: %q\n  catalog: sql\n  sql: {driver: postgres}\n", lakeDir))
		return e
	}

	// A subset of roles on the embedded broker is refused, saying why.
	emb := newEnv(t, "")
	if _, errOut, err := emb.try("serve", "--roles", "warnings"); err == nil || !strings.Contains(errOut, "broker.bootstrap") {
		t.Fatalf("serve --roles warnings on the embedded broker: %v\n%s", err, errOut)
	}
	if _, errOut, err := emb.try("serve", "--roles", "warning"); err == nil || !strings.Contains(errOut, "unknown role") {
		t.Fatalf("serve --roles warning: %v\n%s", err, errOut)
	}

	ingest, front := mk(), mk()
	a := ingest.serveWith("ingest.log", "--roles", "connectors,lakewriter", "--instance", "ingest-1")
	b := front.serveWith("front.log", "--roles", "models,warnings,query,dashboards", "--instance", "serve-1")
	addrA, addrB := httpAddr(t, a), httpAddr(t, b)

	// The data crosses from one instance to the other.
	waitFor(t, "serve-1 to see the weather file ingested by ingest-1", 4*time.Minute, func() (bool, string) {
		out, _, err := front.try("sql", "--format", "csv", "select count(*) from raw.weather")
		return err == nil && strings.Contains(out, "35064"), out
	})

	// Each instance runs its roles' parts only: the SQL API is serve-1's.
	if code := httpCode(t, "http://"+addrA+"/api/sql?q=select+1"); code != http.StatusNotFound {
		t.Errorf("ingest-1 (no query role) answered /api/sql with %d, want 404", code)
	}
	if code := httpCode(t, "http://"+addrB+"/api/sql?q=select+1"); code != http.StatusUnauthorized {
		t.Errorf("serve-1 (query role) answered /api/sql without a login with %d, want 401", code)
	}

	// One platform: each instance lists both, and the paths of the other.
	for _, c := range []struct {
		e    *env
		addr string
		peer string
	}{{front, addrB, "ingest-1"}, {ingest, addrA, "serve-1"}} {
		waitFor(t, c.peer+" listed up by the other instance", time.Minute, func() (bool, string) {
			ins, rows := platform(t, c.addr, c.e)
			up := map[string]string{}
			for _, in := range ins {
				if in.Up {
					up[in.Name] = strings.Join(in.Roles, ",")
				}
			}
			peerPaths := 0
			for _, r := range rows {
				if r.Instance == c.peer {
					peerPaths++
				}
			}
			// Which partitions each reads: ingest-1's lake writer and serve-1's
			// warning engine read the weather topic (weather is an engine input).
			parts := map[string]int{}
			for _, in := range ins {
				for _, ps := range in.Partitions {
					parts[in.Name] += len(ps["raw."+src])
				}
			}
			ok := up["ingest-1"] == "connectors,lakewriter" && up["serve-1"] == "models,warnings,query,dashboards" && (c.peer != "ingest-1" || peerPaths > 0) &&
				parts["ingest-1"] > 0 && parts["serve-1"] > 0
			return ok, fmt.Sprintf("up %v, %d paths of %s, partitions read %v", up, peerPaths, c.peer, parts)
		})
	}
	out := front.run("status")
	if !strings.Contains(out, "ingest-1") || !strings.Contains(out, "serve-1 (this 本实例)") || !strings.Contains(out, "在线 up") || !strings.Contains(out, "lakewriter raw."+src+"[0]") {
		t.Errorf("status on serve-1 does not list the platform's instances:\n%s", out)
	}

	// ingest-1 killed: serve-1 shows it down (three missed heartbeats), in
	// status and /metrics.
	a.kill()
	waitFor(t, "serve-1 to show ingest-1 down", time.Minute, func() (bool, string) {
		ins, rows := platform(t, addrB, front)
		for _, in := range ins {
			if in.Name == "ingest-1" && !in.Up && !in.Stopped {
				for _, r := range rows {
					if r.Instance == "ingest-1" && r.Component == "instance" && r.Level == "error" {
						return true, ""
					}
				}
			}
		}
		return false, fmt.Sprintf("%+v", ins)
	})
	if out := front.run("status"); !strings.Contains(out, "失联 DOWN") {
		t.Errorf("status does not show ingest-1 down:\n%s", out)
	}
	metrics := httpBody(t, "http://"+addrB+"/metrics", operatorToken(t, front))
	if !regexp.MustCompile(`citybrain_instance_up\{instance="ingest-1",roles="connectors,lakewriter"\} 0`).MatchString(metrics) ||
		!regexp.MustCompile(`citybrain_instance_up\{instance="serve-1",roles="models,warnings,query,dashboards"\} 1`).MatchString(metrics) {
		t.Errorf("/metrics citybrain_instance_up:\n%s", grepLines(metrics, "citybrain_instance_up"))
	}
	b.stop(t)
}

var bannerAddrRE = regexp.MustCompile(`http://([0-9.]+:[0-9]+)/api/status`)

// httpAddr waits for serve's banner and returns its HTTP address.
func httpAddr(t *testing.T, s *server) string {
	t.Helper()
	var addr string
	waitFor(t, "serve's banner", 3*time.Minute, func() (bool, string) {
		b, _ := os.ReadFile(s.log)
		if m := bannerAddrRE.FindSubmatch(b); m != nil {
			addr = string(m[1])
			return true, ""
		}
		return false, s.logTail()
	})
	return addr
}

func httpCode(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func operatorToken(t *testing.T, e *env) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.dataDir(), "serve.token"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func httpBody(t *testing.T, url, token string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return sb.String()
}

type freshRow struct {
	Component string `json:"component"`
	Name      string `json:"name"`
	Instance  string `json:"instance"`
	Level     string `json:"level"`
}

// platform reads an instance's /api/freshness: the instances and every path.
func platform(t *testing.T, addr string, e *env) ([]instances.Info, []freshRow) {
	t.Helper()
	var body struct {
		Rows      []freshRow       `json:"rows"`
		Instances []instances.Info `json:"instances"`
	}
	if err := json.Unmarshal([]byte(httpBody(t, "http://"+addr+"/api/freshness", operatorToken(t, e))), &body); err != nil {
		t.Fatal(err)
	}
	return body.Instances, body.Rows
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
