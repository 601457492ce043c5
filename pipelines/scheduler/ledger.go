package scheduler

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Ledger is the scheduler's memory on disk, shared by every process on one
// data directory (citybrain serve, a manual `citybrain extracts run`, an
// Airflow task calling the binary):
//
//	<dir>/<job>/watermark               the last scheduled time handled (RFC 3339)
//	<dir>/<job>/locks/<period>.lock     flock held while a run of that period is going
//	<dir>/<job>/runs/<period>.json      the outcome of the last run of that period
//
// A run holds an exclusive flock on its period's lock file, so two runs of
// one job and period never overlap, whether in one process or two; the
// kernel drops the lock when a process dies, so a crash never leaves a
// period locked for ever.
type Ledger struct {
	dir string
}

// ErrBusy: another run of the same job and period holds the claim.
var ErrBusy = errors.New("已有同一任务同一周期的运行 a run of this job and period is already in progress")

// OpenLedger uses (and creates) dir.
func OpenLedger(dir string) (*Ledger, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("scheduler ledger: %w", err)
	}
	return &Ledger{dir: dir}, nil
}

// Dir is the ledger's directory.
func (l *Ledger) Dir() string { return l.dir }

var jobRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// PeriodKey names a period in file names: its UTC time, to the second.
func PeriodKey(p time.Time) string { return p.UTC().Format("20060102T150405Z") }

func (l *Ledger) jobDir(job string) (string, error) {
	if !jobRE.MatchString(job) {
		return "", fmt.Errorf("scheduler: bad job name %q", job)
	}
	return filepath.Join(l.dir, job), nil
}

// Claim is a held run claim; Release gives it up.
type Claim struct {
	f *os.File
}

// Release drops the claim (idempotent).
func (c *Claim) Release() {
	if c == nil || c.f == nil {
		return
	}
	syscall.Flock(int(c.f.Fd()), syscall.LOCK_UN)
	c.f.Close()
	c.f = nil
}

// Claim takes the run claim of job and period without waiting; ErrBusy
// when another run holds it.
func (l *Ledger) Claim(job string, period time.Time) (*Claim, error) {
	d, err := l.jobDir(job)
	if err != nil {
		return nil, err
	}
	locks := filepath.Join(d, "locks")
	if err := os.MkdirAll(locks, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(locks, PeriodKey(period)+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s @ %s: %w", job, period.Format(time.RFC3339), ErrBusy)
		}
		return nil, err
	}
	fmt.Fprintf(f, "%d\n", os.Getpid())
	return &Claim{f: f}, nil
}

// Run is the outcome of one run of a job's period.
type Run struct {
	Job      string    `json:"job"`
	Period   time.Time `json:"period"`
	Status   string    `json:"status"` // ok | failed | skipped
	Attempts int       `json:"attempts"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Error    string    `json:"error,omitempty"`
	// CatchUp is true when the run was made up after downtime.
	CatchUp bool `json:"catch_up,omitempty"`
}

// Record writes a run's outcome (atomically).
func (l *Ledger) Record(r Run) error {
	d, err := l.jobDir(r.Job)
	if err != nil {
		return err
	}
	return writeJSONAtomic(filepath.Join(d, "runs", PeriodKey(r.Period)+".json"), r)
}

// Last returns the recorded outcome of a period, if any.
func (l *Ledger) Last(job string, period time.Time) (Run, bool) {
	d, err := l.jobDir(job)
	if err != nil {
		return Run{}, false
	}
	var r Run
	b, err := os.ReadFile(filepath.Join(d, "runs", PeriodKey(period)+".json"))
	if err != nil || json.Unmarshal(b, &r) != nil {
		return Run{}, false
	}
	return r, true
}

// Runs lists a job's recorded runs, newest period first.
func (l *Ledger) Runs(job string) ([]Run, error) {
	d, err := l.jobDir(job)
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(filepath.Join(d, "runs"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Run
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(d, "runs", e.Name()))
		if err != nil {
			continue
		}
		var r Run
		if json.Unmarshal(b, &r) == nil {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Period.After(out[j].Period) })
	return out, nil
}

// Watermark is the last scheduled time the scheduler handled for job
// (zero: never).
func (l *Ledger) Watermark(job string) (time.Time, error) {
	d, err := l.jobDir(job)
	if err != nil {
		return time.Time{}, err
	}
	b, err := os.ReadFile(filepath.Join(d, "watermark"))
	if errors.Is(err, os.ErrNotExist) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(b)))
	if err != nil {
		return time.Time{}, fmt.Errorf("scheduler watermark of %s: %w", job, err)
	}
	return t, nil
}

// SetWatermark records that every scheduled time up to t was handled. It
// never moves the watermark back.
func (l *Ledger) SetWatermark(job string, t time.Time) error {
	d, err := l.jobDir(job)
	if err != nil {
		return err
	}
	if cur, err := l.Watermark(job); err == nil && !cur.IsZero() && !t.After(cur) {
		return nil
	}
	return writeFileAtomic(filepath.Join(d, "watermark"), []byte(t.UTC().Format(time.RFC3339Nano)+"\n"))
}

func writeJSONAtomic(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(b, '\n'))
}

func writeFileAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}
