package dashboards_test

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// TestAssetsCached: the page loads content-hashed assets, sent compressed
// (brotli, else gzip, else as they are) with a year's immutable caching and
// an ETag that answers 304; index.html and the favicon are revalidated.
func TestAssetsCached(t *testing.T) {
	e := newEnv(t)
	get := func(path string, hdr map[string]string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		tr := &http.Transport{DisableCompression: true}
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, b
	}
	resp, page := get("/", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-cache" || resp.Header.Get("ETag") == "" {
		t.Fatalf("index: %d %v", resp.StatusCode, resp.Header)
	}
	if r, _ := get("/", map[string]string{"If-None-Match": resp.Header.Get("ETag")}); r.StatusCode != http.StatusNotModified {
		t.Errorf("index revalidation: %d, want 304", r.StatusCode)
	}
	js := regexp.MustCompile(`/assets/app-[0-9a-f]{12}\.js`).FindString(string(page))
	css := regexp.MustCompile(`/assets/app-[0-9a-f]{12}\.css`).FindString(string(page))
	if js == "" || css == "" {
		t.Fatalf("index.html does not load hashed assets: %s", page)
	}
	_, plain := get(js, nil)
	for _, c := range []struct{ accept, enc string }{{"gzip, deflate, br", "br"}, {"gzip", "gzip"}, {"br;q=0, gzip", "gzip"}, {"", ""}} {
		r, b := get(js, map[string]string{"Accept-Encoding": c.accept})
		if r.StatusCode != 200 || r.Header.Get("Content-Encoding") != c.enc {
			t.Errorf("%s with Accept-Encoding %q: %d, encoding %q, want %q", js, c.accept, r.StatusCode, r.Header.Get("Content-Encoding"), c.enc)
		}
		if !strings.Contains(r.Header.Get("Cache-Control"), "immutable") || !strings.Contains(r.Header.Get("Content-Type"), "javascript") {
			t.Errorf("%s: %v", js, r.Header)
		}
		if c.enc != "" && len(b)*2 > len(plain) {
			t.Errorf("%s as %s: %d bytes of %d", js, c.enc, len(b), len(plain))
		}
		if r2, _ := get(js, map[string]string{"Accept-Encoding": c.accept, "If-None-Match": r.Header.Get("ETag")}); r2.StatusCode != http.StatusNotModified {
			t.Errorf("%s revalidation (%q): %d", js, c.accept, r2.StatusCode)
		}
	}
	if r, _ := get(css, map[string]string{"Accept-Encoding": "br"}); r.StatusCode != 200 || !strings.Contains(r.Header.Get("Content-Type"), "css") {
		t.Errorf("%s: %d %v", css, r.StatusCode, r.Header)
	}
	if r, _ := get("/assets/favicon.svg", nil); r.StatusCode != 200 || r.Header.Get("Cache-Control") != "no-cache" {
		t.Errorf("favicon: %d %v", r.StatusCode, r.Header)
	}
	if r, _ := get(js+".br", nil); r.StatusCode != 404 {
		t.Errorf("%s.br served directly: %d", js, r.StatusCode)
	}
}
