package sqlaccess

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/apache/iceberg-go"

	"citybrain/schemas"
	"citybrain/warehouse"
)

// AuditTable is where every analyst statement is recorded.
const AuditTable = "audit.queries"

//go:embed audit_queries.yaml
var auditYAML []byte

// AuditSchema is audit.queries' schema.
func AuditSchema() (*schemas.Schema, error) { return schemas.Parse(auditYAML) }

// Entry is one audited statement.
type Entry struct {
	At         time.Time
	User       string
	Role       string
	Department string
	Interface  string
	Client     string
	SQL        string
	Rows       int64
	Duration   time.Duration
	Outcome    string // ok, error, refused, cancelled
	Error      string
}

// Auditor appends entries to audit.queries in batches: every
// FlushInterval or FlushRows entries, and on Close, so a clean shutdown
// loses nothing. A failed commit keeps the entries for the next attempt.
type Auditor struct {
	cfg      AuditConfig
	lake     *warehouse.Lake
	schema   *schemas.Schema
	log      *slog.Logger
	onCommit func(table string, snapshot int64)

	mu      sync.Mutex
	pending []Entry
	kick    chan struct{}
	flushMu sync.Mutex
}

// NewAuditor creates audit.queries when missing. onCommit (may be nil) is
// told about each commit.
func NewAuditor(ctx context.Context, cfg AuditConfig, lake *warehouse.Lake, log *slog.Logger, onCommit func(string, int64)) (*Auditor, error) {
	s, err := AuditSchema()
	if err != nil {
		return nil, err
	}
	if _, err := lake.EnsureTable(ctx, s); err != nil {
		return nil, err
	}
	return &Auditor{cfg: cfg, lake: lake, schema: s, log: log, onCommit: onCommit, kick: make(chan struct{}, 1)}, nil
}

// Add queues an entry (never blocks on I/O).
func (au *Auditor) Add(e Entry) {
	au.mu.Lock()
	au.pending = append(au.pending, e)
	n := len(au.pending)
	au.mu.Unlock()
	if n >= au.cfg.FlushRows {
		select {
		case au.kick <- struct{}{}:
		default:
		}
	}
}

// Run flushes until ctx is done, then flushes what is left.
func (au *Auditor) Run(ctx context.Context) error {
	t := time.NewTicker(au.cfg.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			return au.Flush(fctx)
		case <-t.C:
		case <-au.kick:
		}
		if err := au.Flush(ctx); err != nil && ctx.Err() == nil {
			au.log.Error("audit flush failed; entries kept for the next attempt", "table", AuditTable, "err", err)
		}
	}
}

// Flush commits the pending entries now.
func (au *Auditor) Flush(ctx context.Context) error {
	au.flushMu.Lock()
	defer au.flushMu.Unlock()
	au.mu.Lock()
	batch := au.pending
	au.pending = nil
	au.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	snap, err := au.commit(ctx, batch)
	if err != nil {
		au.mu.Lock()
		au.pending = append(batch, au.pending...)
		au.mu.Unlock()
		return err
	}
	if au.onCommit != nil {
		au.onCommit(AuditTable, snap)
	}
	return nil
}

func (au *Auditor) commit(ctx context.Context, batch []Entry) (int64, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		snap, err := au.tryCommit(ctx, batch)
		if err == nil {
			return snap, nil
		}
		lastErr = err
		if !errors.Is(err, warehouse.ErrConflict) {
			break
		}
	}
	return 0, lastErr
}

func (au *Auditor) tryCommit(ctx context.Context, batch []Entry) (int64, error) {
	t, err := au.lake.Load(ctx, AuditTable)
	if err != nil {
		return 0, err
	}
	st, err := warehouse.StateOf(t)
	if err != nil {
		return 0, err
	}
	next := st.Clone()
	next.Batch++
	writers := map[string]*warehouse.FileWriter{}
	var files []iceberg.DataFile
	abort := func() {
		for _, w := range writers {
			w.Abort()
		}
	}
	for i, e := range batch {
		rec := schemas.Record{e.At.UTC(), e.User, e.Role, nullable(e.Department), e.Interface, nullable(e.Client),
			e.SQL, e.Rows, float64(e.Duration.Microseconds()) / 1000, e.Outcome, nullable(e.Error)}
		if err := au.schema.Validate(rec); err != nil {
			abort()
			return 0, fmt.Errorf("audit entry: %w", err)
		}
		pv, dir := warehouse.PartitionKey(au.schema, rec)
		w := writers[dir]
		if w == nil {
			rel := fmt.Sprintf("%s/%010d-%d.parquet", dir, next.Batch, time.Now().UnixNano())
			if w, err = au.lake.NewFileWriter(t, au.schema, rel, pv); err != nil {
				abort()
				return 0, err
			}
			writers[dir] = w
		}
		if err := w.Write(rec, fmt.Sprintf("audit:%d:%d", next.Batch, i)); err != nil {
			abort()
			return 0, err
		}
	}
	for dir, w := range writers {
		f, err := w.Close()
		delete(writers, dir)
		if err != nil {
			abort()
			return 0, err
		}
		files = append(files, f)
	}
	return au.lake.Commit(ctx, AuditTable, files, next)
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
