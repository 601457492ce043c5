package sim

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"citybrain/internal/auth"
)

type oneUser struct{}

func (oneUser) FromRequest(r *http.Request) (auth.User, error) {
	if n, p, ok := r.BasicAuth(); ok && n == "leader" && p == "pw" {
		return auth.User{Name: n, Role: auth.RoleLeader}, nil
	}
	return auth.User{}, errors.New("no")
}

// TestFeedsNeedToken: with a token the feeds answer the token's bearer and
// a logged-in user, and 401 (bilingual) to anyone else.
func TestFeedsNeedToken(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, GroundTruthFile), []byte("{}\n"), 0o644)
	r := &Runner{Dir: dir, Token: "s3cret", Users: oneUser{}}
	mux := http.NewServeMux()
	r.Mount(mux)
	get := func(set func(*http.Request)) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", GroundTruthPath, nil)
		set(req)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		return rec
	}
	for name, c := range map[string]struct {
		set  func(*http.Request)
		code int
	}{
		"anonymous":    {func(*http.Request) {}, 401},
		"wrong token":  {func(q *http.Request) { q.Header.Set("Authorization", "Bearer nope") }, 401},
		"bad password": {func(q *http.Request) { q.SetBasicAuth("leader", "x") }, 401},
		"token":        {func(q *http.Request) { q.Header.Set("Authorization", "Bearer s3cret") }, 200},
		"user":         {func(q *http.Request) { q.SetBasicAuth("leader", "pw") }, 200},
	} {
		rec := get(c.set)
		if rec.Code != c.code {
			t.Errorf("%s: %d, want %d: %s", name, rec.Code, c.code, rec.Body)
		}
		if c.code == 401 && !bytesContains(rec.Body.Bytes(), "需要登录") {
			t.Errorf("%s: 401 without a clear message: %s", name, rec.Body)
		}
	}
}

func bytesContains(b []byte, s string) bool { return strings.Contains(string(b), s) }
