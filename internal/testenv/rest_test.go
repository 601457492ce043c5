package testenv

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRESTCatalog(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Java Iceberg REST catalog; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	start := time.Now()
	libs, err := IcebergRESTJars(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("jars ready in %v: %s", time.Since(start).Round(time.Millisecond), libs)

	dir := t.TempDir()
	start = time.Now()
	rc, err := StartRESTCatalog(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := rc.Stop(); err != nil {
			t.Error(err)
		}
	})
	t.Logf("REST catalog up in %v at %s (warehouse %s)", time.Since(start).Round(time.Millisecond), rc.URI(), rc.Warehouse())

	call := func(method, path, body string, wantStatus int) map[string]any {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, rc.URI()+path, rd)
		if err != nil {
			t.Fatal(err)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != wantStatus {
			t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, wantStatus, b)
		}
		var m map[string]any
		if len(b) > 0 {
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatalf("%s %s: bad JSON %q: %v", method, path, b, err)
			}
		}
		return m
	}

	cfg := call("GET", "/v1/config", "", 200)
	if _, ok := cfg["defaults"]; !ok {
		t.Fatalf("/v1/config lacks defaults: %v", cfg)
	}
	call("POST", "/v1/namespaces", `{"namespace":["city"],"properties":{"owner":"testenv"}}`, 200)
	list := call("GET", "/v1/namespaces", "", 200)
	b, _ := json.Marshal(list["namespaces"])
	if string(b) != `[["city"]]` {
		t.Fatalf("namespaces = %s, want [[\"city\"]]", b)
	}
	tbl := call("POST", "/v1/namespaces/city/tables",
		`{"name":"sensors","schema":{"type":"struct","schema-id":0,"fields":[{"id":1,"name":"id","required":true,"type":"long"}]}}`, 200)
	loc, _ := tbl["metadata-location"].(string)
	if !strings.HasPrefix(loc, rc.Warehouse()+string(filepath.Separator)) {
		t.Fatalf("metadata-location %q not under warehouse %q", loc, rc.Warehouse())
	}
	if _, err := os.Stat(loc); err != nil {
		t.Fatalf("metadata file not written: %v", err)
	}
	call("GET", "/v1/namespaces/city/tables/sensors", "", 200)
	call("GET", "/v1/namespaces/nope", "", 404)

	if err := rc.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(rc.URI() + "/v1/config"); err == nil {
		t.Fatal("catalog still answers after Stop")
	}
}
