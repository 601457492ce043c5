package auth

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestLoginThrottle: five wrong passwords lock the name — the right one is
// refused too, with until when — for the lockout; an admin's unlock lifts
// it; failures age out of the window; twenty from one address lock the
// address for every name; unknown names lock alike; failures are audited.
func TestLoginThrottle(t *testing.T) {
	s, err := Open(DefaultConfig(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	s.th.now = func() time.Time { return now }
	var audited []LoginFailure
	s.OnLoginFailure(func(f LoginFailure) { audited = append(audited, f) })
	if err := s.Add("ana", "secret-password", RoleAnalyst, ""); err != nil {
		t.Fatal(err)
	}
	const a1 = "10.0.0.1:5555"
	for i := range 4 {
		if _, err := s.Login("ana", "wrong", a1, "pgwire"); !errors.Is(err, ErrBadLogin) {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	if _, err := s.Login("ana", "secret-password", a1, "pgwire"); err != nil {
		t.Fatalf("right password after 4 failures: %v", err)
	}
	// A success cleared the count: five more failures are needed.
	for i := range 5 {
		_, err := s.Login("ana", "wrong", a1, "web")
		if i < 4 && !errors.Is(err, ErrBadLogin) || i == 4 && !errors.Is(err, ErrLocked) {
			t.Fatalf("failure %d after the success: %v", i+1, err)
		}
	}
	_, err = s.Login("ana", "secret-password", "10.0.0.2:1", "web")
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "09:15:00") {
		t.Fatalf("right password while locked (from another address): %v; want ErrLocked until 09:15:00", err)
	}
	if locks := s.Locks(); len(locks) != 1 || locks[0].Key != "user:ana" || !locks[0].Until.Equal(now.Add(15*time.Minute)) {
		t.Fatalf("locks: %+v", locks)
	}
	if len(audited) != 10 || !audited[9].Locked || audited[0].Interface != "pgwire" || audited[0].Addr != a1 {
		t.Fatalf("audited %d failures: %+v", len(audited), audited)
	}
	// An admin lifts it.
	if !s.Unlock("ana") {
		t.Fatal("Unlock(ana) = false")
	}
	if _, err := s.Login("ana", "secret-password", a1, "web"); err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	// The lock ends by itself after the lockout.
	for range 5 {
		s.Login("ana", "wrong", a1, "web")
	}
	now = now.Add(16 * time.Minute)
	if _, err := s.Login("ana", "secret-password", a1, "web"); err != nil {
		t.Fatalf("after the lockout: %v", err)
	}
	// Failures older than the window do not count.
	for range 4 {
		s.Login("ana", "wrong", a1, "web")
	}
	now = now.Add(16 * time.Minute)
	if _, err := s.Login("ana", "wrong", a1, "web"); !errors.Is(err, ErrBadLogin) {
		t.Fatalf("a fifth failure after the window: %v, want only ErrBadLogin", err)
	}
	now = now.Add(16 * time.Minute)

	// One address guessing many names: locked at 20, for every name.
	const a3 = "10.0.0.3:4000"
	for i := range 20 {
		s.Login("guess"+string(rune('a'+i)), "x", a3, "http")
	}
	if _, err := s.Login("ana", "secret-password", a3, "http"); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "10.0.0.3") {
		t.Fatalf("right password from a locked address: %v", err)
	}
	if _, err := s.Login("ana", "secret-password", "10.0.0.4:1", "http"); err != nil {
		t.Fatalf("another address: %v", err)
	}
	// Unknown names lock like known ones.
	for range 5 {
		s.Login("nobody", "x", "10.0.0.5:1", "web")
	}
	if err := s.CheckLogin("nobody", "10.0.0.6:1"); !errors.Is(err, ErrLocked) {
		t.Fatalf("unknown name after 5 failures: %v", err)
	}

	// HTTP basic auth goes through the throttle.
	r := httptest.NewRequest("GET", "/api/sql", nil)
	r.RemoteAddr = a3
	r.SetBasicAuth("ana", "secret-password")
	if _, err := s.FromRequest(r); !errors.Is(err, ErrLocked) {
		t.Fatalf("basic auth from a locked address: %v", err)
	}

	// A store opened again (the users file changed) keeps the locks.
	s2, err := Open(DefaultConfig(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s2.ShareLogins(s)
	if err := s2.CheckLogin("nobody", ""); !errors.Is(err, ErrLocked) {
		t.Fatalf("shared store: %v", err)
	}
}

// TestLoginThrottleOff: login_max_failures 0 never locks.
func TestLoginThrottleOff(t *testing.T) {
	cfg := DefaultConfig()
	cfg.LoginMaxFailures, cfg.LoginMaxFailuresPerAddress = 0, 0
	s, err := Open(cfg, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Add("ana", "secret-password", RoleAnalyst, ""); err != nil {
		t.Fatal(err)
	}
	for range 30 {
		s.Login("ana", "wrong", "10.0.0.1:1", "web")
	}
	if _, err := s.Login("ana", "secret-password", "10.0.0.1:1", "web"); err != nil {
		t.Fatalf("with throttling off: %v", err)
	}
}
