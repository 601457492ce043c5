package auth

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"time"
)

// Login throttling. Every password check (the dashboards' login, HTTP
// basic auth, pgwire's SCRAM exchange) goes through Store.Login or
// CheckLogin + RecordLogin. Failures are counted per user name (known or
// not, so that locking does not reveal which names exist) and per client
// address within LoginWindow; at LoginMaxFailures for a name, or
// LoginMaxFailuresPerAddress for an address, the name or the address is
// locked for LoginLockout: every login then fails, the right password
// too, with an error that says until when and what to do. A success clears
// the name's count (not the address's). Locks live in memory: a restart
// clears them. Admins list them (`citybrain users locked`, GET
// /api/admin/locks) and lift them (`citybrain users unlock`, DELETE
// /api/admin/locks/{key}).

// ErrLocked: too many failed logins; the name or address is locked for a while.
var ErrLocked = errors.New("登录已被临时锁定 login temporarily locked after too many failed attempts")

// Lock is a locked user name ("user:NAME") or client address ("addr:IP").
type Lock struct {
	Key      string    `json:"key"`
	Failures int       `json:"failures"`
	Until    time.Time `json:"until"`
}

// throttle counts failed logins.
type throttle struct {
	mu        sync.Mutex
	now       func() time.Time
	keys      map[string]*failures
	onFailure func(LoginFailure)
}

// ShareLogins makes s count failed logins (and lock) together with from: a
// store opened again after the users file changed keeps the locks.
func (s *Store) ShareLogins(from *Store) {
	if from != nil && from != s {
		s.th = from.th
	}
}

type failures struct {
	times []time.Time // within the window
	until time.Time   // locked until
}

// LoginFailure describes a failed or refused login, for the audit log.
type LoginFailure struct {
	User, Addr, Interface string
	// Locked: refused because the name or address is locked (no password check).
	Locked bool
	Err    error
}

func (s *Store) limits() (max, maxAddr int, window, lockout time.Duration) {
	c := s.cfg
	return c.LoginMaxFailures, c.LoginMaxFailuresPerAddress, c.LoginWindow, c.LoginLockout
}

// addrKey is the client's IP without its port ("" when unknown).
func addrKey(addr string) string {
	if addr == "" {
		return ""
	}
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// CheckLogin refuses a login attempt while the name or the address is locked.
func (s *Store) CheckLogin(name, addr string) error {
	s.th.mu.Lock()
	defer s.th.mu.Unlock()
	now := s.th.now()
	for _, k := range []string{"user:" + name, "addr:" + addrKey(addr)} {
		if k == "addr:" {
			continue
		}
		if f := s.th.keys[k]; f != nil && now.Before(f.until) {
			what := "该账户 this account"
			if strings.HasPrefix(k, "addr:") {
				what = "该地址 this address (" + strings.TrimPrefix(k, "addr:") + ")"
			}
			return fmt.Errorf("%w: %s, %s 前请勿再试 until %s (%s left); an admin can lift it: citybrain users unlock %s",
				ErrLocked, what, f.until.Format("15:04:05"), f.until.Format(time.RFC3339), f.until.Sub(now).Round(time.Second), k)
		}
	}
	return nil
}

// RecordLogin counts a finished password check: a failure towards the
// locks of the name and the address, a success clears the name's count.
func (s *Store) RecordLogin(name, addr string, ok bool) {
	max, maxAddr, window, lockout := s.limits()
	if max <= 0 {
		return
	}
	s.th.mu.Lock()
	defer s.th.mu.Unlock()
	now := s.th.now()
	if ok {
		delete(s.th.keys, "user:"+name)
		return
	}
	for _, k := range []struct {
		key string
		max int
	}{{"user:" + name, max}, {"addr:" + addrKey(addr), maxAddr}} {
		if k.key == "addr:" || k.max <= 0 {
			continue
		}
		f := s.th.keys[k.key]
		if f == nil {
			f = &failures{}
			s.th.keys[k.key] = f
		}
		kept := f.times[:0]
		for _, t := range f.times {
			if now.Sub(t) < window {
				kept = append(kept, t)
			}
		}
		f.times = append(kept, now)
		if len(f.times) >= k.max && !now.Before(f.until) {
			f.until = now.Add(lockout)
		}
	}
	// Forget names and addresses with no recent failure and no lock, so
	// that guessing random names does not grow the table for good.
	if len(s.th.keys) > 10_000 {
		for k, f := range s.th.keys {
			if !now.Before(f.until) && (len(f.times) == 0 || now.Sub(f.times[len(f.times)-1]) >= window) {
				delete(s.th.keys, k)
			}
		}
	}
}

// Login checks the lock, the password, and counts the attempt. iface names
// where it came from (web, http, pgwire) for the audit hook.
func (s *Store) Login(name, password, addr, iface string) (User, error) {
	if err := s.CheckLogin(name, addr); err != nil {
		s.failed(LoginFailure{User: name, Addr: addr, Interface: iface, Locked: true, Err: err})
		return User{}, err
	}
	u, err := s.Verify(name, password)
	s.RecordLogin(name, addr, err == nil)
	if err != nil {
		s.failed(LoginFailure{User: name, Addr: addr, Interface: iface, Err: err})
		if lerr := s.CheckLogin(name, addr); lerr != nil {
			return User{}, lerr // this failure locked it: say so now
		}
	}
	return u, err
}

// LoginFailed reports a failed login checked elsewhere (pgwire's SCRAM) to
// the audit hook.
func (s *Store) LoginFailed(f LoginFailure) { s.failed(f) }

func (s *Store) failed(f LoginFailure) {
	s.th.mu.Lock()
	fn := s.th.onFailure
	s.th.mu.Unlock()
	if fn != nil {
		fn(f)
	}
}

// OnLoginFailure sets the hook told about every failed or refused login
// (the SQL audit log records them).
func (s *Store) OnLoginFailure(fn func(LoginFailure)) {
	s.th.mu.Lock()
	s.th.onFailure = fn
	s.th.mu.Unlock()
}

// Locks lists the names and addresses locked now.
func (s *Store) Locks() []Lock {
	s.th.mu.Lock()
	defer s.th.mu.Unlock()
	now := s.th.now()
	var out []Lock
	for k, f := range s.th.keys {
		if now.Before(f.until) {
			out = append(out, Lock{Key: k, Failures: len(f.times), Until: f.until})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// Unlock lifts a lock ("user:NAME", "addr:IP", or a bare user name) and
// forgets its failures; false if there was none.
func (s *Store) Unlock(key string) bool {
	if !strings.HasPrefix(key, "user:") && !strings.HasPrefix(key, "addr:") {
		key = "user:" + key
	}
	s.th.mu.Lock()
	defer s.th.mu.Unlock()
	f, ok := s.th.keys[key]
	delete(s.th.keys, key)
	return ok && s.th.now().Before(f.until)
}
