// Package auth is the platform's users, roles, departments and sessions,
// shared by every interface: the dashboards (login, cookie sessions), the
// HTTP API (session cookie, bearer token or basic auth), the PostgreSQL
// wire server (SCRAM-SHA-256) and the extracts (a department's row scope).
//
// Roles: admin (everything, manages users), leader (dashboards, all rows),
// analyst (SQL over every table, all rows), department (only the tables and
// rows its department's scope allows).
//
// Users live in one JSON file (data/users.json by default), written
// atomically. Passwords are kept only as SCRAM-SHA-256 verifiers
// (PBKDF2-SHA-256 salted, 4096+ iterations; RFC 5802/7677): the same
// record checks a web login and a PostgreSQL-wire SCRAM exchange.
// Sessions are in memory; a restart logs everyone out.
package auth

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
)

// Role is what a user may do.
type Role string

// The four roles.
const (
	RoleAdmin      Role = "admin"
	RoleLeader     Role = "leader"
	RoleAnalyst    Role = "analyst"
	RoleDepartment Role = "department"
)

// Valid reports whether r is one of the four roles.
func (r Role) Valid() bool {
	switch r {
	case RoleAdmin, RoleLeader, RoleAnalyst, RoleDepartment:
		return true
	}
	return false
}

// Config is the auth section of citybrain.yaml.
type Config struct {
	// UsersFile is the users' JSON file; relative paths are under data_dir.
	UsersFile string `yaml:"users_file"`
	// SessionTTL is how long a web session lives without use.
	SessionTTL time.Duration `yaml:"session_ttl"`
	// SecureCookies marks session cookies Secure (set it when served over HTTPS).
	SecureCookies bool `yaml:"secure_cookies"`
	// SuppressBelow: mobile-signal counts below it are hidden outside the admin role.
	SuppressBelow int `yaml:"suppress_below"`
	// DemoUsers creates admin/leader/analyst/dept_water with the password
	// "citybrain-demo" when the users file is empty (make run only).
	DemoUsers bool `yaml:"demo_users"`
	// Departments and what each may see.
	Departments []Department `yaml:"departments"`
	// LoginMaxFailures failed logins of one user name within LoginWindow
	// lock the name for LoginLockout (0: no throttling; see throttle.go).
	LoginMaxFailures int `yaml:"login_max_failures"`
	// LoginMaxFailuresPerAddress failed logins from one client address
	// (any names) within LoginWindow lock the address.
	LoginMaxFailuresPerAddress int `yaml:"login_max_failures_per_address"`
	// LoginWindow is how long a failed login counts.
	LoginWindow time.Duration `yaml:"login_window"`
	// LoginLockout is how long a lock lasts.
	LoginLockout time.Duration `yaml:"login_lockout"`
}

// Department is a department and its scope: table → row filter (a SQL
// boolean expression over that table's columns; "" = every row). Tables not
// listed are invisible to the department's users.
type Department struct {
	Name   string            `yaml:"name" json:"name"`
	NameZh string            `yaml:"name_zh" json:"name_zh"`
	NameEn string            `yaml:"name_en" json:"name_en"`
	Tables map[string]string `yaml:"tables" json:"tables"`
}

// DefaultConfig: users in data/users.json, 12 h sessions, k = 10, and the
// departments of the plan with their own tables.
func DefaultConfig() Config {
	return Config{
		UsersFile:                  "users.json",
		SessionTTL:                 12 * time.Hour,
		SuppressBelow:              10,
		LoginMaxFailures:           5,
		LoginMaxFailuresPerAddress: 20,
		LoginWindow:                15 * time.Minute,
		LoginLockout:               15 * time.Minute,
		Departments: []Department{
			{Name: "emergency", NameZh: "应急管理局", NameEn: "Emergency Management Bureau", Tables: map[string]string{
				"raw.incidents": "", "raw.enterprises": "", "raw.risk_sources": "", "raw.inspections": "", "raw.hazards": "",
				"raw.shelters": "", "raw.supply_warehouses": "", "raw.fire_stations": "", "marts.enterprise_risk": "", "marts.warnings": "",
				"raw.emergency_plans": "", "raw.plan_levels": "", "raw.plan_roles": "", "raw.role_holders": "", "marts.responses": "", "raw.drills": "", "raw.streets": "", "raw.communities": "",
				"raw.inspectors": "", "marts.inspection_plans": ""}},
			{Name: "water", NameZh: "水务局", NameEn: "Water Authority", Tables: map[string]string{
				"raw.water_telemetry": "", "raw.weather": "", "marts.warnings": "kind IN ('rainstorm', 'waterlogging', 'lifeline')",
				"raw.water_sensors": "", "raw.waterlogging_points": "", "raw.streets": "", "raw.communities": ""}},
			{Name: "traffic", NameZh: "交通委", NameEn: "Transport Commission", Tables: map[string]string{
				"raw.traffic_collisions": "", "raw.traffic_speeds": "", "marts.warnings": "kind = 'traffic'", "raw.streets": ""}},
			{Name: "police", NameZh: "公安分局", NameEn: "Public Security Sub-bureau", Tables: map[string]string{
				"raw.police_cases": "", "raw.crowd_counts": "", "raw.mobile_signal": "", "marts.warnings": "kind = 'crowd'",
				"raw.venues": "", "raw.venue_cells": "", "raw.grid_cells": "", "raw.streets": ""}},
			{Name: "city_management", NameZh: "城管委", NameEn: "City Management Commission", Tables: map[string]string{
				"raw.city_events": "", "raw.construction_sites": "", "raw.streets": "", "raw.communities": ""}},
			{Name: "planning", NameZh: "规划分局", NameEn: "Planning Sub-bureau", Tables: map[string]string{
				"raw.building_permits": "", "raw.construction_sites": "", "raw.dangerous_buildings": "", "raw.planned_shelters": "", "raw.streets": "", "raw.communities": ""}},
		},
	}
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_.-]{0,62}$`)

// Validate checks the section.
func (c Config) Validate() error {
	if c.SessionTTL <= 0 {
		return errors.New("auth.session_ttl must be positive")
	}
	if c.SuppressBelow < 0 {
		return errors.New("auth.suppress_below must be ≥ 0")
	}
	if c.LoginMaxFailures < 0 || c.LoginMaxFailuresPerAddress < 0 {
		return errors.New("auth.login_max_failures and login_max_failures_per_address must be ≥ 0 (0: no throttling)")
	}
	if c.LoginMaxFailures > 0 && (c.LoginWindow <= 0 || c.LoginLockout <= 0) {
		return errors.New("auth.login_window and auth.login_lockout must be positive when auth.login_max_failures is set")
	}
	seen := map[string]bool{}
	for _, d := range c.Departments {
		if !nameRE.MatchString(d.Name) {
			return fmt.Errorf("auth.departments: name %q: lower-case letters, digits, _ . - only", d.Name)
		}
		if seen[d.Name] {
			return fmt.Errorf("auth.departments: %q twice", d.Name)
		}
		seen[d.Name] = true
		for t := range d.Tables {
			if len(strings.Split(t, ".")) != 2 {
				return fmt.Errorf("auth.departments[%s].tables: %q is not namespace.table", d.Name, t)
			}
		}
	}
	return nil
}

// User is one account. Secrets are SCRAM-SHA-256 verifiers.
type User struct {
	Name        string `json:"name"`
	DisplayName string `json:"display_name,omitempty"`
	Role        Role   `json:"role"`
	Department  string `json:"department,omitempty"`
	// PersonID links the account to a person of the emergency plans
	// (raw.role_holders): the responder app shows that person's tasks.
	PersonID string    `json:"person_id,omitempty"`
	Disabled bool      `json:"disabled,omitempty"`
	Created  time.Time `json:"created"`

	Salt       []byte `json:"salt"`
	Iterations int    `json:"iterations"`
	StoredKey  []byte `json:"stored_key"`
	ServerKey  []byte `json:"server_key"`
}

// Public is the user without secrets (for APIs).
func (u User) Public() User {
	u.Salt, u.StoredKey, u.ServerKey, u.Iterations = nil, nil, nil, 0
	return u
}

// Errors.
var (
	ErrBadLogin = errors.New("wrong user name or password / 用户名或密码错误")
	ErrNoUser   = errors.New("no such user / 用户不存在")
	ErrExists   = errors.New("user exists / 用户已存在")
)

// Store is the users and sessions.
type Store struct {
	cfg  Config
	path string

	mu       sync.Mutex
	users    map[string]*User
	sessions map[string]*session
	tokens   map[string]string // API token → user name
	// th counts failed logins (throttle.go), shared by the stores that
	// reload the same users file (ShareLogins).
	th *throttle
}

type session struct {
	user    string
	csrf    string
	expires time.Time
}

// Open loads (or creates) the users file under dataDir.
func Open(cfg Config, dataDir string) (*Store, error) {
	p := cfg.UsersFile
	if p == "" {
		p = "users.json"
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(dataDir, p)
	}
	s := &Store{cfg: cfg, path: p, users: map[string]*User{}, sessions: map[string]*session{}, tokens: map[string]string{},
		th: &throttle{now: time.Now, keys: map[string]*failures{}}}
	b, err := os.ReadFile(p)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("users file: %w", err)
	default:
		var us []*User
		if err := json.Unmarshal(b, &us); err != nil {
			return nil, fmt.Errorf("users file %s: %w", p, err)
		}
		for _, u := range us {
			s.users[u.Name] = u
		}
	}
	if cfg.DemoUsers && len(s.users) == 0 {
		for _, d := range DemoAccounts {
			if err := s.Add(d.Name, DemoPassword, d.Role, d.Department); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

// DemoPassword is the demo accounts' password (auth.demo_users).
const DemoPassword = "citybrain-demo"

// DemoAccounts are created by auth.demo_users.
var DemoAccounts = []User{
	{Name: "admin", Role: RoleAdmin},
	{Name: "leader", Role: RoleLeader},
	{Name: "analyst", Role: RoleAnalyst},
	{Name: "dept_water", Role: RoleDepartment, Department: "water"},
}

// Config is the section the store was opened with.
func (s *Store) Config() Config { return s.cfg }

// Department returns a department's definition.
func (s *Store) Department(name string) (Department, bool) {
	for _, d := range s.cfg.Departments {
		if d.Name == name {
			return d, true
		}
	}
	return Department{}, false
}

func (s *Store) saveLocked() error {
	us := make([]*User, 0, len(s.users))
	for _, u := range s.users {
		us = append(us, u)
	}
	sort.Slice(us, func(i, j int) bool { return us[i].Name < us[j].Name })
	b, err := json.MarshalIndent(us, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(s.path), 0o755); err != nil {
		return err
	}
	tmp := s.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, s.path)
}

// Verifier derives the SCRAM-SHA-256 verifier of a password.
func Verifier(password string, salt []byte, iterations int) (storedKey, serverKey []byte) {
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, 32)
	if err != nil {
		panic(err) // only for invalid parameters, which callers never pass
	}
	clientKey := hmacSHA256(salted, []byte("Client Key"))
	sk := sha256.Sum256(clientKey)
	return sk[:], hmacSHA256(salted, []byte("Server Key"))
}

func hmacSHA256(key, msg []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(msg)
	return h.Sum(nil)
}

// Iterations is the PBKDF2 iteration count for new passwords.
const Iterations = 4096

func validPassword(p string) error {
	if len([]rune(p)) < 8 {
		return errors.New("password too short: at least 8 characters / 密码至少 8 个字符")
	}
	return nil
}

// Add creates a user.
func (s *Store) Add(name, password string, role Role, department string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("user name %q: lower-case letters, digits, _ . - only / 用户名只能包含小写字母、数字和 _ . -", name)
	}
	if !role.Valid() {
		return fmt.Errorf("role %q: one of admin, leader, analyst, department / 角色无效", role)
	}
	if role == RoleDepartment {
		if _, ok := s.Department(department); !ok {
			return fmt.Errorf("department %q is not in auth.departments / 部门未配置", department)
		}
	} else if department != "" {
		return fmt.Errorf("only department users have a department")
	}
	if err := validPassword(password); err != nil {
		return err
	}
	u := &User{Name: name, Role: role, Department: department, Created: time.Now().UTC().Truncate(time.Second)}
	setPassword(u, password)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[name]; ok {
		return fmt.Errorf("%w: %s", ErrExists, name)
	}
	s.users[name] = u
	return s.saveLocked()
}

func setPassword(u *User, password string) {
	u.Salt = make([]byte, 16)
	rand.Read(u.Salt)
	u.Iterations = Iterations
	u.StoredKey, u.ServerKey = Verifier(password, u.Salt, u.Iterations)
}

// SetPassword changes a password and ends the user's sessions.
func (s *Store) SetPassword(name, password string) error {
	if err := validPassword(password); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[name]
	if !ok {
		return fmt.Errorf("%w: %s", ErrNoUser, name)
	}
	setPassword(u, password)
	s.endSessionsLocked(name)
	return s.saveLocked()
}

// Update changes role, department, display name or disabled (not the password).
func (s *Store) Update(name string, fn func(u *User) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[name]
	if !ok {
		return fmt.Errorf("%w: %s", ErrNoUser, name)
	}
	c := *u
	if err := fn(&c); err != nil {
		return err
	}
	if !c.Role.Valid() {
		return fmt.Errorf("role %q: one of admin, leader, analyst, department", c.Role)
	}
	if c.Role == RoleDepartment {
		if _, ok := s.Department(c.Department); !ok {
			return fmt.Errorf("department %q is not in auth.departments", c.Department)
		}
	} else {
		c.Department = ""
	}
	c.Name, c.Salt, c.Iterations, c.StoredKey, c.ServerKey = u.Name, u.Salt, u.Iterations, u.StoredKey, u.ServerKey
	*u = c
	if u.Disabled {
		s.endSessionsLocked(name)
	}
	return s.saveLocked()
}

// Delete removes a user and its sessions.
func (s *Store) Delete(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[name]; !ok {
		return fmt.Errorf("%w: %s", ErrNoUser, name)
	}
	delete(s.users, name)
	s.endSessionsLocked(name)
	return s.saveLocked()
}

func (s *Store) endSessionsLocked(name string) {
	for k, v := range s.sessions {
		if v.user == name {
			delete(s.sessions, k)
		}
	}
	for k, v := range s.tokens {
		if v == name {
			delete(s.tokens, k)
		}
	}
}

// Get returns a copy of a user.
func (s *Store) Get(name string) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[name]
	if !ok {
		return User{}, false
	}
	return *u, true
}

// List returns the users (without secrets), by name.
func (s *Store) List() []User {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]User, 0, len(s.users))
	for _, u := range s.users {
		out = append(out, u.Public())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Verify checks a password (constant time in the comparison).
func (s *Store) Verify(name, password string) (User, error) {
	u, ok := s.Get(name)
	if !ok || u.Disabled {
		// Spend the same work as a real check.
		Verifier(password, []byte("citybrain-nouser"), Iterations)
		return User{}, ErrBadLogin
	}
	stored, _ := Verifier(password, u.Salt, u.Iterations)
	if subtle.ConstantTimeCompare(stored, u.StoredKey) != 1 {
		return User{}, ErrBadLogin
	}
	return u, nil
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// NewSession starts a web session; it returns the session token (the
// cookie's value) and the session's CSRF token.
func (s *Store) NewSession(name string) (token, csrf string) {
	token, csrf = randomToken(), randomToken()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions[token] = &session{user: name, csrf: csrf, expires: time.Now().Add(s.cfg.SessionTTL)}
	return token, csrf
}

// Session returns the user of a live session and its CSRF token, and
// extends the session.
func (s *Store) Session(token string) (User, string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.sessions[token]
	if !ok {
		return User{}, "", false
	}
	if time.Now().After(ss.expires) {
		delete(s.sessions, token)
		return User{}, "", false
	}
	u, ok := s.users[ss.user]
	if !ok || u.Disabled {
		delete(s.sessions, token)
		return User{}, "", false
	}
	ss.expires = time.Now().Add(s.cfg.SessionTTL)
	return *u, ss.csrf, true
}

// EndSession logs a session out.
func (s *Store) EndSession(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, token)
}

// NewToken issues an API bearer token for a user (valid until restart or
// until the user changes).
func (s *Store) NewToken(name string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[name]; !ok {
		return "", fmt.Errorf("%w: %s", ErrNoUser, name)
	}
	t := randomToken()
	s.tokens[t] = name
	return t, nil
}

// SessionCookie is the session cookie's name.
const SessionCookie = "citybrain_session"

// CSRFHeader carries the CSRF token on state-changing requests made with a
// session cookie.
const CSRFHeader = "X-CSRF-Token"

// ErrUnauthenticated: no credentials, or wrong ones.
var ErrUnauthenticated = errors.New("login required / 请先登录")

// FromRequest finds the request's user: a session cookie (state-changing
// methods must then carry the CSRF header), a bearer token, or HTTP basic
// auth (for scripts and tools).
func (s *Store) FromRequest(r *http.Request) (User, error) {
	if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
		u, csrf, ok := s.Session(c.Value)
		if !ok {
			return User{}, ErrUnauthenticated
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
		default:
			if subtle.ConstantTimeCompare([]byte(r.Header.Get(CSRFHeader)), []byte(csrf)) != 1 {
				return User{}, errors.New("missing or wrong CSRF token / CSRF 校验失败: reload the page")
			}
		}
		return u, nil
	}
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		s.mu.Lock()
		name, ok := s.tokens[strings.TrimPrefix(h, "Bearer ")]
		s.mu.Unlock()
		if !ok {
			return User{}, ErrUnauthenticated
		}
		u, ok := s.Get(name)
		if !ok || u.Disabled {
			return User{}, ErrUnauthenticated
		}
		return u, nil
	}
	if name, pw, ok := r.BasicAuth(); ok {
		return s.Login(name, pw, r.RemoteAddr, "http")
	}
	return User{}, ErrUnauthenticated
}

// Scope is what a user may read: All, or only Tables (table → row filter,
// "" = every row).
type Scope struct {
	All    bool
	Tables map[string]string
	// Admin may also read the audit log (audit.*) and see every figure.
	Admin bool
	// Suppress hides mobile-signal counts below this (0: none).
	Suppress int
}

// ScopeOf is a user's scope.
func (s *Store) ScopeOf(u User) Scope {
	sc := Scope{All: u.Role != RoleDepartment, Suppress: s.cfg.SuppressBelow}
	if u.Role == RoleAdmin {
		sc.Suppress, sc.Admin = 0, true
	}
	if u.Role == RoleDepartment {
		d, _ := s.Department(u.Department)
		sc.Tables = d.Tables
	}
	return sc
}

// DepartmentScope is a department's scope (for extracts).
func (s *Store) DepartmentScope(name string) (Scope, error) {
	d, ok := s.Department(name)
	if !ok {
		return Scope{}, fmt.Errorf("department %q is not in auth.departments", name)
	}
	return Scope{Tables: d.Tables, Suppress: s.cfg.SuppressBelow}, nil
}

// Sees says whether the scope may know that table exists: list it, see its
// source, lag and freshness. The audit log (audit.*) is the admins' only.
func (sc Scope) Sees(table string) bool {
	if ns, _, _ := strings.Cut(strings.ToLower(table), "."); ns == "audit" && !sc.Admin {
		return false
	}
	_, ok := sc.Allows(table)
	return ok
}

// Counts says whether the scope may see table's whole-table figures (row
// counts, Kafka offsets, rejects): it sees the table and every row of it.
// Under a row filter those figures would tell what the filter hides.
func (sc Scope) Counts(table string) bool {
	if !sc.Sees(table) {
		return false
	}
	f, _ := sc.Allows(table)
	return f == ""
}

// Allows says whether the scope may read table, and with which row filter
// ("" = every row).
func (sc Scope) Allows(table string) (filter string, ok bool) {
	if sc.All {
		return "", true
	}
	f, ok := sc.Tables[strings.ToLower(table)]
	return f, ok
}
