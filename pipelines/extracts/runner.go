// Package extracts delivers to each department, on schedule, the data it
// is entitled to, in a form its staff open directly: CSV (UTF-8 with BOM
// or GB18030, which Chinese Excel opens cleanly), XLSX or Parquet, to a
// folder, an HTTP endpoint or by mail.
//
// An extract is a YAML definition (docs/extracts.md): a table or a SELECT,
// the receiving department — whose row scope from auth.departments is
// applied automatically and whose out-of-scope tables are refused — PII
// rules, a format, a file name template, a cron schedule in a time zone,
// deliveries and a retention. Every run reads pinned lake snapshots and
// writes a manifest (extract, period, snapshot ids, rows, SHA-256,
// duration), so `citybrain extracts run NAME --as-of SNAPSHOT` regenerates
// the same bytes. Runs are scheduled by pipelines/scheduler inside
// citybrain serve, or by Apache Airflow (pipelines/airflow) calling the
// binary.
package extracts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"citybrain/internal/auth"
	"citybrain/pipelines/scheduler"
	"citybrain/warehouse"
)

// Scopes gives a department's scope; *auth.Store implements it.
type Scopes interface {
	DepartmentScope(name string) (auth.Scope, error)
}

var _ Scopes = (*auth.Store)(nil)

// Runner runs extracts.
type Runner struct {
	defs   []Definition
	cfg    Config
	eng    *warehouse.Engine
	lake   *warehouse.Lake
	scopes Scopes
	ledger *scheduler.Ledger
	out    string
	log    *slog.Logger
	// HTTP is the client of http deliveries.
	HTTP *http.Client
	// SMTPPassword is CITYBRAIN_SMTP_PASSWORD.
	SMTPPassword string
	// Sleep waits between delivery retries (tests shorten it).
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the clock of manual runs' default period.
	Now func() time.Time
	// Labels are Chinese column labels of tables besides the schemas'
	// (table → column → description): the models' marts (models.Project
	// ColumnLabels), for bilingual headers.
	Labels map[string]map[string]string

	histMu sync.Mutex
}

// NewRunner prepares the extracts of cfg; outDir holds files, manifests,
// history and the scheduler ledger.
func NewRunner(cfg Config, outDir string, eng *warehouse.Engine, lake *warehouse.Lake, scopes Scopes, log *slog.Logger) (*Runner, error) {
	defs, err := cfg.All()
	if err != nil {
		return nil, err
	}
	for _, d := range defs {
		if _, err := scopes.DepartmentScope(d.Department); err != nil {
			return nil, fmt.Errorf("%w %q: 部门 %q 未在 auth.departments 中定义 (department %q is not in auth.departments)", ErrDefinition, d.Name, d.Department, d.Department)
		}
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, fmt.Errorf("extracts output dir: %w", err)
	}
	ledger, err := scheduler.OpenLedger(filepath.Join(outDir, "_ledger"))
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Runner{defs: defs, cfg: cfg, eng: eng, lake: lake, scopes: scopes, ledger: ledger, out: outDir, log: log,
		HTTP: &http.Client{Timeout: 5 * time.Minute}, SMTPPassword: os.Getenv("CITYBRAIN_SMTP_PASSWORD"),
		Sleep: sleepCtx, Now: time.Now}, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Definitions are the extracts, sorted by name.
func (r *Runner) Definitions() []Definition { return r.defs }

// Ledger is the scheduler ledger the runs share.
func (r *Runner) Ledger() *scheduler.Ledger { return r.ledger }

// OutputDir is where files, manifests and history live.
func (r *Runner) OutputDir() string { return r.out }

// ErrNoExtract: no extract of that name.
var ErrNoExtract = errors.New("没有该提取任务 no such extract")

// Definition finds an extract by name.
func (r *Runner) Definition(name string) (Definition, error) {
	var names []string
	for _, d := range r.defs {
		if d.Name == name {
			return d, nil
		}
		names = append(names, d.Name)
	}
	return Definition{}, fmt.Errorf("%w %q (configured: %s; see `citybrain extracts list`)", ErrNoExtract, name, strings.Join(names, ", "))
}

// DefaultPeriod is the period a run started by hand covers: the latest
// scheduled time at or before now (so it replaces that scheduled output),
// or now to the minute for an extract without a schedule.
func (r *Runner) DefaultPeriod(d Definition) time.Time {
	now := r.Now().In(d.Location())
	if d.Schedule.Cron != "" {
		s, err := scheduler.ParseSchedule(d.Schedule.Cron, d.Schedule.Timezone)
		if err == nil {
			if p := s.Prev(now); !p.IsZero() {
				return p
			}
		}
	}
	return now.Truncate(time.Minute)
}

// periodStart is the scheduled time before period (a day before for an
// extract without a schedule).
func periodStart(d Definition, period time.Time) time.Time {
	if d.Schedule.Cron != "" {
		if s, err := scheduler.ParseSchedule(d.Schedule.Cron, d.Schedule.Timezone); err == nil {
			if p := s.Prev(period.Add(-time.Second)); !p.IsZero() {
				return p
			}
		}
	}
	return period.Add(-24 * time.Hour)
}

// RunOptions tune one run.
type RunOptions struct {
	// Period is the scheduled time the run covers (zero: DefaultPeriod).
	Period time.Time
	// AsOf pins input tables to snapshots (table → snapshot id); the
	// others are read at their current snapshot.
	AsOf map[string]int64
	// Trigger says who started it: schedule, manual, api, airflow.
	Trigger string
	// NoDeliver writes the file and manifest but sends nothing.
	NoDeliver bool
	// Progress is called as rows are written (total from a count first).
	Progress func(rows, total int64)
}

// Manifest describes one delivered file; it is written beside the file as
// <file>.manifest.json and appended to the history.
type Manifest struct {
	ID          string           `json:"id"`
	Extract     string           `json:"extract"`
	Title       string           `json:"title,omitempty"`
	Department  string           `json:"department"`
	Period      time.Time        `json:"period"`
	PeriodStart time.Time        `json:"period_start"`
	Format      string           `json:"format"`
	Encoding    string           `json:"encoding,omitempty"`
	File        string           `json:"file"`
	Rows        int64            `json:"rows"`
	Bytes       int64            `json:"bytes"`
	SHA256      string           `json:"sha256"`
	Snapshots   map[string]int64 `json:"snapshots"`
	Columns     []Column         `json:"columns"`
	Query       string           `json:"query"`
	Trigger     string           `json:"trigger,omitempty"`
	Started     time.Time        `json:"started"`
	DurationMS  int64            `json:"duration_ms"`
	Status      string           `json:"status"` // ok | failed
	Error       string           `json:"error,omitempty"`
	Deliveries  []DeliveryResult `json:"deliveries,omitempty"`
}

// DeliveryResult is the outcome of one delivery.
type DeliveryResult struct {
	Type     string `json:"type"`
	Target   string `json:"target"`
	Status   string `json:"status"` // ok | failed
	Attempts int    `json:"attempts"`
	Error    string `json:"error,omitempty"`
}

// DeliveryID names a delivery: extract/period key.
func DeliveryID(name string, period time.Time) string {
	return name + "." + scheduler.PeriodKey(period)
}

// Run runs one extract now, holding the ledger claim of its period (so a
// scheduled run of the same period cannot overlap; scheduler.ErrBusy).
func (r *Runner) Run(ctx context.Context, name string, o RunOptions) (*Manifest, error) {
	d, err := r.Definition(name)
	if err != nil {
		return nil, err
	}
	if o.Period.IsZero() {
		o.Period = r.DefaultPeriod(d)
	}
	claim, err := r.ledger.Claim(d.Name, o.Period)
	if err != nil {
		return nil, err
	}
	defer claim.Release()
	return r.run(ctx, d, o)
}

// run does the work; the caller holds the period's claim.
func (r *Runner) run(ctx context.Context, d Definition, o RunOptions) (*Manifest, error) {
	start := time.Now()
	m := &Manifest{ID: DeliveryID(d.Name, o.Period), Extract: d.Name, Title: d.Title, Department: d.Department,
		Period: o.Period.In(d.Location()), PeriodStart: periodStart(d, o.Period).In(d.Location()), Format: d.Format,
		Encoding: d.Encoding, File: d.OutputName(o.Period), Trigger: o.Trigger, Started: start.UTC().Truncate(time.Millisecond)}
	if d.Format == "csv" && m.Encoding == "" {
		m.Encoding = "utf-8-bom"
	}
	err := r.render(ctx, d, o, m)
	m.DurationMS = time.Since(start).Milliseconds()
	if err != nil {
		m.Status, m.Error = "failed", err.Error()
		r.log.Error("extract failed", "extract", d.Name, "period", o.Period, "err", err)
		r.appendHistory(m)
		return m, err
	}
	if !o.NoDeliver {
		m.Deliveries = r.deliver(ctx, d, m)
	}
	m.Status = "ok"
	var failed []string
	for _, dr := range m.Deliveries {
		if dr.Status != "ok" {
			failed = append(failed, dr.Type+" "+dr.Target+": "+dr.Error)
		}
	}
	if len(failed) > 0 {
		m.Status, m.Error = "failed", "投递失败 delivery failed: "+strings.Join(failed, "; ")
	}
	if err := writeJSON(r.manifestPath(d.Name, m.File), m); err != nil {
		return m, err
	}
	r.appendHistory(m)
	r.expire(d)
	r.log.Info("extract delivered", "extract", d.Name, "period", o.Period, "rows", m.Rows, "file", m.File, "snapshot", m.Snapshots, "status", m.Status)
	if m.Status != "ok" {
		return m, errors.New(m.Error)
	}
	return m, nil
}

func (r *Runner) filePath(name, file string) string { return filepath.Join(r.out, name, file) }
func (r *Runner) manifestPath(name, file string) string {
	return filepath.Join(r.out, name, file+".manifest.json")
}

// FilePath is where a delivery's file is kept.
func (r *Runner) FilePath(m *Manifest) string { return r.filePath(m.Extract, m.File) }

func (r *Runner) render(ctx context.Context, d Definition, o RunOptions, m *Manifest) error {
	sc, err := r.scopes.DepartmentScope(d.Department)
	if err != nil {
		return err
	}
	plan, err := planQuery(ctx, r.eng, r.lake, d, sc, m.PeriodStart, m.Period, o.AsOf)
	if err != nil {
		return err
	}
	m.Snapshots, m.Query = plan.Inputs, plan.SQL
	total := int64(-1) // unknown
	_, wantsTotal := formats[d.Format].open(io.Discard, d).(totaler)
	if o.Progress != nil || wantsTotal {
		if rows, err := r.eng.Query(ctx, "SELECT count(*) FROM ("+plan.SQL+")"); err == nil {
			if rows.Next() && rows.Scan(&total) != nil {
				total = -1
			}
			rows.Close()
		}
		if o.Progress != nil {
			o.Progress(0, total)
		}
	}
	dir := filepath.Join(r.out, d.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".tmp-"+m.File+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	// The SHA-256 is computed as the bytes are written, not re-read.
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(tmp, h)}
	w := formats[d.Format].open(cw, d)
	if t, ok := w.(totaler); ok {
		t.SetTotal(total)
	}
	// Two stages on two goroutines: reading DuckDB's result in column
	// batches (readRows) and rendering them (PII rules, format, hash,
	// file). At most a few dozen batches (of a few thousand rows) are in
	// flight, so memory stays bounded whatever the size; the slack lets
	// the reader run on while a writer finishes a row group.
	var tf *rowTransform
	started := false
	queued := make(chan *colBatch, 32)
	rendered := make(chan error, 1)
	readCtx, stopRead := context.WithCancel(ctx)
	defer stopRead()
	release := func(b *colBatch) {
		if b.release != nil {
			b.release()
		}
	}
	readErr := readRows(readCtx, r.eng, plan.SQL, func(cols []Column) error {
		var outCols []Column
		if tf, outCols, err = newTransform(d, cols, sc.Suppress); err != nil {
			return err
		}
		if d.Format != "parquet" && d.Header != "names" {
			labelColumns(outCols, slices.Collect(maps.Keys(plan.Inputs)), r.Labels)
		}
		m.Columns = outCols
		if err := w.Header(outCols); err != nil {
			return err
		}
		started = true
		go func() {
			var werr error
			aw, async := w.(asyncWriter)
			for b := range queued {
				if werr == nil && readCtx.Err() == nil {
					if async {
						werr = aw.BatchAsync(tf.apply(b), func() { release(b) })
					} else {
						werr = w.Batch(tf.apply(b))
						release(b)
					}
					if werr != nil {
						werr = fmt.Errorf("extract %q: write %s: %w", d.Name, d.Format, werr)
						stopRead()
					} else {
						m.Rows += int64(b.n)
						if o.Progress != nil && m.Rows/8192 != (m.Rows-int64(b.n))/8192 {
							o.Progress(m.Rows, total)
						}
					}
				} else {
					release(b)
				}
			}
			rendered <- werr
		}()
		return nil
	}, func(b *colBatch) error {
		select {
		case queued <- b:
			return nil
		case <-readCtx.Done():
			release(b)
			return readCtx.Err()
		}
	})
	writeErr := error(nil)
	if started {
		close(queued)
		writeErr = <-rendered
	}
	if writeErr != nil || readErr != nil {
		if a, ok := w.(aborter); ok && started {
			a.Abort()
		}
		tmp.Close()
		if writeErr != nil {
			return writeErr
		}
		return fmt.Errorf("extract %q: query: %w", d.Name, readErr)
	}
	if err := w.Close(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if o.Progress != nil {
		o.Progress(m.Rows, total)
	}
	m.Bytes, m.SHA256 = cw.n, hex.EncodeToString(h.Sum(nil))
	if err := os.Chmod(tmp.Name(), 0o644); err != nil { // CreateTemp makes 0600
		return err
	}
	// Named by the period: a re-run of the period replaces the file.
	return os.Rename(tmp.Name(), r.filePath(d.Name, m.File))
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ---- history ----

func (r *Runner) historyPath() string { return filepath.Join(r.out, "history.jsonl") }

func (r *Runner) appendHistory(m *Manifest) {
	r.histMu.Lock()
	defer r.histMu.Unlock()
	b, err := json.Marshal(m)
	if err != nil {
		return
	}
	f, err := os.OpenFile(r.historyPath(), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		r.log.Error("extract history", "err", err)
		return
	}
	defer f.Close()
	f.Write(append(b, '\n')) // one write: appends from several processes do not interleave
}

// History lists the runs of an extract ("" = all), newest first, at most
// limit (0 = all).
func (r *Runner) History(name string, limit int) ([]Manifest, error) {
	b, err := os.ReadFile(r.historyPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Manifest
	for _, line := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var m Manifest
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		if name == "" || m.Extract == name {
			out = append(out, m)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Started.After(out[j].Started) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Delivery finds the latest manifest of a delivery id whose file is still
// kept.
func (r *Runner) Delivery(id string) (*Manifest, error) {
	name, key, ok := strings.Cut(id, ".")
	if !ok || !nameRE.MatchString(name) || strings.ContainsAny(key, `/\.`) {
		return nil, fmt.Errorf("没有该投递 no delivery %q", id)
	}
	d, err := r.Definition(name)
	if err != nil {
		return nil, err
	}
	period, err := time.Parse("20060102T150405Z", key)
	if err != nil {
		return nil, fmt.Errorf("没有该投递 no delivery %q", id)
	}
	b, err := os.ReadFile(r.manifestPath(d.Name, d.OutputName(period)))
	if err != nil {
		return nil, fmt.Errorf("没有该投递 no delivery %q (expired or never made)", id)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// expire removes files older than the retention.
func (r *Runner) expire(d Definition) {
	if d.Retention <= 0 {
		return
	}
	ms, _ := filepath.Glob(filepath.Join(r.out, d.Name, "*.manifest.json"))
	cutoff := r.Now().Add(-d.Retention)
	for _, p := range ms {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var m Manifest
		if json.Unmarshal(b, &m) != nil || m.Period.IsZero() || !m.Period.Before(cutoff) {
			continue
		}
		os.Remove(r.filePath(d.Name, m.File))
		os.Remove(p)
		r.log.Info("extract file expired", "extract", d.Name, "file", m.File, "retention", d.Retention)
	}
}

// Jobs are the scheduled extracts as scheduler jobs.
func (r *Runner) Jobs() ([]scheduler.Job, error) {
	var jobs []scheduler.Job
	for _, d := range r.defs {
		if d.Schedule.Cron == "" {
			continue
		}
		s, err := scheduler.ParseSchedule(d.Schedule.Cron, d.Schedule.Timezone)
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, scheduler.Job{Name: d.Name, Schedule: s, Run: func(ctx context.Context, period time.Time, attempt int) error {
			_, err := r.run(ctx, d, RunOptions{Period: period, Trigger: "schedule"})
			return err
		}})
	}
	return jobs, nil
}
