package inspection

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"citybrain/internal/auth"
)

// AppConfig is the inspector app's part of citybrain.yaml (key inspection).
type AppConfig struct {
	// Enabled serves the inspector app (/inspect/) and its API.
	Enabled bool `yaml:"enabled"`
	// SpoolDir is where accepted results wait for the connectors
	// (app_inspections, app_hazards): <spool_dir>/inspections/<id>.jsonl and
	// <spool_dir>/hazards/<id>.jsonl. Relative to data_dir.
	SpoolDir string `yaml:"spool_dir"`
	// AutoPublish draws and publishes the current month's plan when it is
	// not published yet and the portraits are there (checked every
	// minute): the built-in monthly schedule. Off, plans are published by
	// hand (citybrain inspections plan --publish).
	AutoPublish bool `yaml:"auto_publish"`
	// Budget is the inspections of an auto-published month; 0: the
	// monthly average of the 12 months before (raw.inspections).
	Budget int `yaml:"budget"`
}

// DefaultAppConfig serves the app with its spool in <data_dir>/inspector_app
// and publishes plans by hand.
func DefaultAppConfig() AppConfig { return AppConfig{Enabled: true, SpoolDir: "inspector_app"} }

// MonthlyBudget is the average number of inspections a month in the 12
// months before month (raw.inspections); an error when there are fewer
// than 12.
func MonthlyBudget(ctx context.Context, query func(ctx context.Context, q string, args ...any) (*sql.Rows, error), month time.Time) (int, error) {
	rows, err := query(ctx, `SELECT count(*) FROM raw.inspections WHERE inspected_at >= ? AND inspected_at < ?`, month.AddDate(-1, 0, 0), month)
	if err != nil {
		return 0, fmt.Errorf("raw.inspections not readable (%v): give the month's number of inspections (--budget, inspection.budget)", err)
	}
	defer rows.Close()
	var n int64
	if rows.Next() {
		if err := rows.Scan(&n); err != nil {
			return 0, err
		}
	}
	if n < 12 {
		return 0, errors.New("raw.inspections holds too few inspections in the 12 months before to size the plan: give it with --budget (inspection.budget) / 历史检查过少，请指定检查数量")
	}
	return int((n + 6) / 12), nil
}

// Authenticator is what the API needs of the platform's users (*auth.Store).
type Authenticator interface {
	FromRequest(r *http.Request) (auth.User, error)
}

// API serves the inspector's phone (docs/inspection.md, "The inspector's phone"):
//
//	GET  /api/inspect/me                     {"user", "inspector_id", "name", "street_code"}
//	GET  /api/inspect/visits[?day=YYYY-MM-DD] {"day", "visits": [Visit…]}: the day's planned visits of the inspector
//	POST /api/inspect/results                a Result → 201 {"status": "accepted"} or 200 {"status": "duplicate"}
//
// A user acts as the inspector their account is linked to (auth.User.PersonID
// = raw.inspectors.inspector_id; `citybrain users add NAME --person I00001`).
// A result is written to the spool as two files — the hazards, then the
// inspection — each atomically and named by the result's id, which the
// phone makes when the form is saved: a result sent again (the phone was
// offline, or did not hear the answer) finds its files there and is not
// written twice. The file connectors app_inspections and app_hazards carry
// the files to Kafka and the lake exactly once.
type API struct {
	Auth  Authenticator
	Query func(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	// Spool is the spool directory (absolute).
	Spool string
	Now   func() time.Time

	mu sync.Mutex // one writer of the spool at a time
}

// Mount adds the routes to mux.
func (a *API) Mount(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/inspect/me", a.me)
	mux.HandleFunc("GET /api/inspect/visits", a.visits)
	mux.HandleFunc("POST /api/inspect/results", a.submit)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// inspector is the account's inspector.
type inspector struct {
	User   string `json:"user"`
	ID     string `json:"inspector_id"`
	Name   string `json:"name"`
	Street string `json:"street_code"`
}

func (a *API) who(w http.ResponseWriter, r *http.Request) (inspector, bool) {
	u, err := a.Auth.FromRequest(r)
	if err != nil {
		fail(w, http.StatusUnauthorized, err.Error())
		return inspector{}, false
	}
	if u.PersonID == "" {
		fail(w, http.StatusForbidden, "该账号未关联检查人员 / this account is not linked to an inspector: an admin runs citybrain users add NAME --person <inspector_id>")
		return inspector{}, false
	}
	in := inspector{User: u.Name, ID: u.PersonID}
	err = a.each(r.Context(), `SELECT coalesce(name, ''), coalesce(street_code, '') FROM raw.inspectors WHERE inspector_id = ?
		ORDER BY updated_at DESC LIMIT 1`, []any{u.PersonID}, func(rows *sql.Rows) error { return rows.Scan(&in.Name, &in.Street) })
	if err != nil {
		fail(w, http.StatusServiceUnavailable, "检查人员名单不可读 / raw.inspectors not readable: "+err.Error())
		return inspector{}, false
	}
	if in.Street == "" {
		fail(w, http.StatusForbidden, fmt.Sprintf("检查人员 %s 不在名单中 / inspector %s is not in raw.inspectors", u.PersonID, u.PersonID))
		return inspector{}, false
	}
	return in, true
}

func (a *API) each(ctx context.Context, q string, args []any, scan func(*sql.Rows) error) error {
	rows, err := a.Query(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

func (a *API) me(w http.ResponseWriter, r *http.Request) {
	if in, ok := a.who(w, r); ok {
		writeJSON(w, http.StatusOK, in)
	}
}

// PlannedVisit is one visit of the inspector's day, as the phone shows it.
type PlannedVisit struct {
	Month      string   `json:"month"`
	VisitNo    int64    `json:"visit_no"`
	Day        string   `json:"day"`
	Enterprise string   `json:"enterprise_id"`
	Name       string   `json:"enterprise_name"`
	Address    string   `json:"address,omitempty"`
	Industry   string   `json:"industry,omitempty"`
	Lon        *float64 `json:"lon,omitempty"`
	Lat        *float64 `json:"lat,omitempty"`
	Level      string   `json:"level,omitempty"`
	Reason     string   `json:"reason"`
	// Done is when the unit was inspected this month (a result received), if it was.
	Done *time.Time `json:"done,omitempty"`
}

func (a *API) visits(w http.ResponseWriter, r *http.Request) {
	in, ok := a.who(w, r)
	if !ok {
		return
	}
	day := a.Now().In(Shanghai)
	if s := r.URL.Query().Get("day"); s != "" {
		d, err := time.ParseInLocation(time.DateOnly, s, Shanghai)
		if err != nil {
			fail(w, http.StatusBadRequest, "day: want YYYY-MM-DD / 日期格式应为 YYYY-MM-DD")
			return
		}
		day = d
	}
	dayS := day.Format(time.DateOnly)
	month := MonthStart(day)
	out := []PlannedVisit{}
	err := a.each(r.Context(), `SELECT p.visit_no, p.enterprise_id, coalesce(p.enterprise_name, ''), coalesce(p.level, ''), p.reason,
			coalesce(e.address, ''), coalesce(e.industry, ''), e.longitude, e.latitude
		FROM `+PlanTable+` p LEFT JOIN (SELECT * FROM raw.enterprises QUALIFY row_number() OVER (PARTITION BY id ORDER BY updated_at DESC) = 1) e
			ON e.id = p.enterprise_id
		WHERE p.month = CAST(? AS DATE) AND p.day = CAST(? AS DATE) AND p.inspector_id = ? ORDER BY p.visit_no`,
		[]any{month.Format(time.DateOnly), dayS, in.ID}, func(rows *sql.Rows) error {
			v := PlannedVisit{Month: month.Format("2006-01"), Day: dayS}
			var lon, lat sql.NullFloat64
			if err := rows.Scan(&v.VisitNo, &v.Enterprise, &v.Name, &v.Level, &v.Reason, &v.Address, &v.Industry, &lon, &lat); err != nil {
				return err
			}
			if lon.Valid && lat.Valid {
				v.Lon, v.Lat = &lon.Float64, &lat.Float64
			}
			out = append(out, v)
			return nil
		})
	if err != nil {
		if strings.Contains(err.Error(), "does not exist") {
			writeJSON(w, http.StatusOK, map[string]any{"day": dayS, "visits": out, "note": "本月检查计划尚未公布 / no plan published yet"})
			return
		}
		fail(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	done := a.doneThisMonth(r.Context(), month, out)
	for i := range out {
		if t, ok := done[out[i].Enterprise]; ok {
			out[i].Done = &t
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"day": dayS, "inspector": in, "visits": out})
}

// doneThisMonth: when each of the visits' units was inspected this month —
// in the lake (raw.inspections), or received and not yet there (the spool).
func (a *API) doneThisMonth(ctx context.Context, month time.Time, vs []PlannedVisit) map[string]time.Time {
	done := map[string]time.Time{}
	if len(vs) == 0 {
		return done
	}
	want := map[string]bool{}
	ids := make([]string, 0, len(vs))
	for _, v := range vs {
		want[v.Enterprise] = true
		ids = append(ids, "'"+strings.ReplaceAll(v.Enterprise, "'", "''")+"'")
	}
	a.each(ctx, `SELECT enterprise_id, max(inspected_at) FROM raw.inspections WHERE inspected_at >= ? AND inspected_at < ?
		AND enterprise_id IN (`+strings.Join(ids, ", ")+`) GROUP BY 1`, []any{month, month.AddDate(0, 1, 0)}, func(rows *sql.Rows) error {
		var id string
		var at time.Time
		if err := rows.Scan(&id, &at); err == nil {
			done[id] = at
		}
		return nil
	})
	files, _ := filepath.Glob(filepath.Join(a.Spool, "inspections", "*.jsonl"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var rec struct {
			Enterprise string    `json:"enterprise_id"`
			At         time.Time `json:"inspected_at"`
		}
		if json.Unmarshal(b, &rec) == nil && want[rec.Enterprise] && !rec.At.Before(month) && rec.At.Before(month.AddDate(0, 1, 0)) {
			if rec.At.After(done[rec.Enterprise]) {
				done[rec.Enterprise] = rec.At
			}
		}
	}
	return done
}

// Result is what the phone sends for one inspection.
type Result struct {
	// ID is the result's id, made by the phone when the form is saved
	// (8–64 letters, digits and dashes): the same result sent again is
	// recognised by it.
	ID          string    `json:"id"`
	Enterprise  string    `json:"enterprise_id"`
	InspectedAt time.Time `json:"inspected_at"`
	// Result is pass, fail or rectify.
	Result  string         `json:"result"`
	Hazards []ResultHazard `json:"hazards"`
	Notes   string         `json:"notes"`
}

// ResultHazard is one hazard found.
type ResultHazard struct {
	Level       string `json:"level"` // major or general
	Description string `json:"description"`
	Deadline    string `json:"deadline"` // YYYY-MM-DD, rectification deadline
}

var resultID = regexp.MustCompile(`^[A-Za-z0-9-]{8,64}$`)

// MaxResultAge is how long after an inspection its result is accepted (a
// phone offline for days sends it when it is back).
const MaxResultAge = 30 * 24 * time.Hour

func (a *API) submit(w http.ResponseWriter, r *http.Request) {
	in, ok := a.who(w, r)
	if !ok {
		return
	}
	var res Result
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&res); err != nil {
		fail(w, http.StatusBadRequest, "检查结果格式错误 / the result is not valid JSON: "+err.Error())
		return
	}
	if err := a.validate(r.Context(), in, &res); err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	insFile := filepath.Join(a.Spool, "inspections", res.ID+".jsonl")
	if _, err := os.Stat(insFile); err == nil {
		writeJSON(w, http.StatusOK, map[string]string{"status": "duplicate", "inspection_id": "APP-" + res.ID})
		return
	}
	ins, hz := res.records(in.ID)
	if len(hz) > 0 {
		hzFile := filepath.Join(a.Spool, "hazards", res.ID+".jsonl")
		if _, err := os.Stat(hzFile); err != nil {
			if err := writeAtomic(hzFile, hz); err != nil {
				fail(w, http.StatusInternalServerError, "检查结果未能保存，请重试 / the result was not saved; send it again: "+err.Error())
				return
			}
		}
	}
	if err := writeAtomic(insFile, [][]byte{ins}); err != nil {
		fail(w, http.StatusInternalServerError, "检查结果未能保存，请重试 / the result was not saved; send it again: "+err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"status": "accepted", "inspection_id": "APP-" + res.ID, "hazards": len(hz)})
}

// validate checks a result; every problem is said (zh / en).
func (a *API) validate(ctx context.Context, in inspector, res *Result) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !resultID.MatchString(res.ID) {
		bad("id：应为 8–64 位字母、数字或连字符 / id: 8–64 letters, digits or dashes")
	}
	now := a.Now()
	switch {
	case res.InspectedAt.IsZero():
		bad("inspected_at：缺少检查时间 / inspected_at is missing")
	case res.InspectedAt.After(now.Add(10 * time.Minute)):
		bad("inspected_at：检查时间在未来 / inspected_at is in the future (check the phone's clock)")
	case res.InspectedAt.Before(now.Add(-MaxResultAge)):
		bad("inspected_at：超过 30 天的检查结果不再受理 / inspected_at is over 30 days old: enter it in the enforcement system")
	}
	switch res.Result {
	case "pass", "fail", "rectify":
	default:
		bad("result：应为 pass（合格）、fail（不合格）或 rectify（责令整改）/ result: pass, fail or rectify")
	}
	if res.Result == "pass" && len(res.Hazards) > 0 {
		bad("result：合格的检查不应登记隐患 / result pass with hazards: choose rectify or fail")
	}
	if res.Result == "rectify" && len(res.Hazards) == 0 {
		bad("hazards：责令整改须登记至少一项隐患 / rectify needs at least one hazard")
	}
	if len(res.Hazards) > 50 {
		bad("hazards：一次最多 50 项 / at most 50 hazards a result")
	}
	for i, h := range res.Hazards {
		if h.Level != "major" && h.Level != "general" {
			bad("hazards[%d].level：应为 major（重大）或 general（一般）/ level: major or general", i)
		}
		if d := strings.TrimSpace(h.Description); d == "" || utf8.RuneCountInString(d) > 500 {
			bad("hazards[%d].description：须填写，最多 500 字 / description: required, at most 500 characters", i)
		}
		d, err := time.ParseInLocation(time.DateOnly, h.Deadline, Shanghai)
		if err != nil {
			bad("hazards[%d].deadline：整改期限格式应为 YYYY-MM-DD / deadline: YYYY-MM-DD", i)
		} else if t := res.InspectedAt.In(Shanghai); !res.InspectedAt.IsZero() && d.Before(time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, Shanghai)) {
			bad("hazards[%d].deadline：整改期限早于检查日期 / deadline: before the inspection's day", i)
		}
	}
	if utf8.RuneCountInString(res.Notes) > 2000 {
		bad("notes：最多 2000 字 / notes: at most 2,000 characters")
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	// The unit: in the inspector's street.
	var street sql.NullString
	found := false
	err := a.each(ctx, `SELECT street_code FROM raw.enterprises WHERE id = ? ORDER BY updated_at DESC LIMIT 1`, []any{res.Enterprise},
		func(rows *sql.Rows) error { found = true; return rows.Scan(&street) })
	switch {
	case err != nil:
		return fmt.Errorf("单位名录不可读，请稍后重试 / raw.enterprises not readable; send it again later: %w", err)
	case !found:
		return fmt.Errorf("enterprise_id：单位 %s 不存在 / enterprise %s is not in raw.enterprises", res.Enterprise, res.Enterprise)
	case street.String != in.Street:
		return fmt.Errorf("enterprise_id：单位 %s 不在您负责的街道 / enterprise %s is not in your street (%s)", res.Enterprise, res.Enterprise, in.Street)
	}
	return nil
}

// records are the spool lines of a result: the inspection, and its hazards
// (ids APP-<id> and APP-<id>-<n>), in the canonical fields.
func (res *Result) records(inspector string) ([]byte, [][]byte) {
	id := "APP-" + res.ID
	at := res.InspectedAt.UTC().Format(time.RFC3339)
	ins, _ := json.Marshal(map[string]any{"id": id, "enterprise_id": res.Enterprise, "inspected_at": at, "result": res.Result,
		"inspector_id": inspector, "hazards_found": len(res.Hazards), "notes": strings.TrimSpace(res.Notes)})
	var hz [][]byte
	for i, h := range res.Hazards {
		b, _ := json.Marshal(map[string]any{"id": fmt.Sprintf("%s-%d", id, i+1), "enterprise_id": res.Enterprise, "found_at": at,
			"level": h.Level, "description": strings.TrimSpace(h.Description), "deadline": h.Deadline, "status": "open", "inspection_id": id})
		hz = append(hz, b)
	}
	return ins, hz
}

// writeAtomic writes the lines to path through a temporary file that the
// connectors' glob (*.jsonl) does not match: fsync, rename, fsync of the
// directory — a reader sees the whole file or none.
func writeAtomic(path string, lines [][]byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	for _, l := range lines {
		if _, err := f.Write(append(l, '\n')); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
