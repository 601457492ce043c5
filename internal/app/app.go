// Package app wires the components into the running platform: it opens the
// broker (embedded or a cluster), the lake and the query engine, runs
// connectors and lake writers, and computes status. The CLI (internal/cli)
// is a thin layer over it.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"citybrain/connectors"
	"citybrain/connectors/sources"
	"citybrain/internal/broker"
	"citybrain/internal/config"
	"citybrain/internal/freshness"
	"citybrain/pipelines/lakewriter"
	"citybrain/schemas"
	"citybrain/warehouse"
)

// BrokerMode says how Open finds a broker.
type BrokerMode int

const (
	// NoBroker: lake only (sql, tables).
	NoBroker BrokerMode = iota
	// OwnBroker: start the embedded broker unless a cluster is configured (serve).
	OwnBroker
	// AttachBroker: use the broker of a running citybrain serve on the same
	// data directory, else behave like OwnBroker (ingest, status).
	AttachBroker
	// ReadBroker: for commands that only read (status, dlq list and show):
	// use the embedded broker of any running citybrain process on the same
	// data directory (serve, or an ingest), else behave like OwnBroker.
	// Without it, `dlq show` during an ingest waited for the ingest's lock.
	ReadBroker
)

// App is an opened platform.
type App struct {
	Cfg      config.Config
	Log      *slog.Logger
	Reg      *schemas.Registry
	Lake     *warehouse.Lake
	Embedded *broker.Embedded
	Client   *broker.Client
	// Attached is true when the broker belongs to a running serve.
	Attached bool
	// Fresh, if set, shows sources that fail to start or read on their
	// freshness paths (citybrain serve sets it).
	Fresh *freshness.Registry
	// StartBackoff paces the retries of a source or lake writer that
	// cannot start (zero: DefaultStartBackoff()).
	StartBackoff Backoff
	lock         *os.File
}

// Open opens the lake and, per mode, the broker.
func Open(ctx context.Context, cfg config.Config, log *slog.Logger, mode BrokerMode) (*App, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	reg, err := schemas.Builtin()
	if err != nil {
		return nil, err
	}
	a := &App{Cfg: cfg, Log: log, Reg: reg}
	if mode == OwnBroker {
		// citybrain serve: take the data directory before anything else, so a
		// CLI command started meanwhile attaches to this serve instead of
		// opening the embedded broker's log itself.
		if err := a.LockServe(); err != nil {
			return nil, err
		}
	}
	if a.Lake, err = warehouse.Open(ctx, cfg.Warehouse, cfg.DataDir, log); err != nil {
		a.Close()
		return nil, err
	}
	if mode == NoBroker {
		return a, nil
	}
	brokers := cfg.Broker.Bootstrap
	if len(brokers) == 0 {
		if addr, ok := broker.RunningEmbeddedAddr(cfg.DataDir); ok && mode == AttachBroker && ServeRunning(cfg.DataDir) {
			brokers, a.Attached = []string{addr}, true
		} else if addr, ok := broker.RunningEmbeddedAddr(cfg.DataDir); ok && mode == ReadBroker && broker.EmbeddedInUse(cfg.DataDir) {
			brokers, a.Attached = []string{addr}, ServeRunning(cfg.DataDir)
		} else {
			if mode != OwnBroker && ServeRunning(cfg.DataDir) {
				a.Close()
				return nil, fmt.Errorf("citybrain serve is running on %s but its broker does not answer; wait for it to start or stop it", cfg.DataDir)
			}
			if a.Embedded, err = broker.StartEmbedded(cfg.DataDir, cfg.Broker.EmbeddedPort, log); err != nil {
				a.Close()
				return nil, err
			}
			brokers = []string{a.Embedded.Addr()}
		}
	} else if (mode == AttachBroker || mode == ReadBroker) && ServeRunning(cfg.DataDir) {
		a.Attached = true
	}
	a.Client = broker.NewClient(brokers, cfg.Broker)
	return a, nil
}

// Close stops the embedded broker and releases the lake and the serve lock.
func (a *App) Close() {
	if a.Embedded != nil {
		a.Embedded.Close()
	}
	if a.Lake != nil {
		a.Lake.Close()
	}
	if a.lock != nil {
		a.lock.Close()
	}
}

func lockPath(dataDir string) string { return filepath.Join(dataDir, "serve.lock") }

// LockServe takes the data directory's serve lock: one serve per data
// directory. The lock is released by Close or by the process dying.
func (a *App) LockServe() error {
	if a.lock != nil {
		return nil
	}
	f, err := os.OpenFile(lockPath(a.Cfg.DataDir), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return fmt.Errorf("another citybrain serve is running on %s; stop it first", a.Cfg.DataDir)
	}
	a.lock = f
	return nil
}

// ServeRunning reports whether a citybrain serve holds the data directory.
func ServeRunning(dataDir string) bool { return broker.LockHeld(lockPath(dataDir)) }

// OpenSource builds a configured source.
func (a *App) OpenSource(name string) (*sources.Opened, error) {
	d, err := a.Cfg.Source(name)
	if err != nil {
		return nil, err
	}
	return sources.Open(d, a.Reg)
}

// IngestStats are the figures of one pass of a source.
type IngestStats struct {
	Good, Rejected int64
}

// RunSource reads a source into its topics: once (until the feed has no
// more for now) or, with poll > 0, again every poll until ctx is done.
//
// With poll > 0 (citybrain serve) RunSource never gives up on the source:
// a start that fails — the broker or the lake not answering in time on a
// busy machine, typically "context deadline exceeded" — is retried with
// backoff (a.StartBackoff), and a read that fails is retried at the next
// poll. Every failure is logged and, while the source keeps failing, shown
// on its freshness path (a.Fresh: source/<source>, error "connector: …",
// pending since the first failure, so it turns from warn to error); it
// returns only once ctx is done, with a nil error. With poll <= 0
// (citybrain ingest) the first error is returned.
func (a *App) RunSource(ctx context.Context, src *sources.Opened, poll time.Duration) (IngestStats, error) {
	name := src.Def.Name
	health := a.health(src, "connector")
	var cp connectors.Checkpoint
	start := time.Now()
	for attempt := 1; ; attempt++ {
		var err error
		if cp, err = a.startSource(ctx, src); err == nil {
			if attempt > 1 {
				a.Log.Info("数据源已启动 source started after retrying", "source", name, "attempts", attempt, "took", time.Since(start).Round(time.Millisecond))
			}
			health.ok()
			break
		}
		if poll <= 0 {
			return IngestStats{}, err
		}
		if ctx.Err() != nil {
			return IngestStats{}, nil
		}
		if !a.retry(ctx, health, attempt, err, "数据源启动失败，稍后重试 source could not start; retrying", "source", name) {
			return IngestStats{}, nil
		}
	}
	prod := connectors.NewProducer(a.Client, name, src.Schema, a.Cfg.DataDir, cp)
	defer prod.Close()
	if c, ok := src.Source.(io.Closer); ok {
		defer c.Close()
	}
	for {
		err := src.Source.Read(ctx, cp.Positions, prod.Emit)
		st := IngestStats{Good: prod.Good, Rejected: prod.Rejected}
		if poll <= 0 || ctx.Err() != nil {
			if ctx.Err() != nil {
				err = nil
			}
			return st, err
		}
		if err != nil {
			a.Log.Error("source failed; retrying at the next poll", "source", name, "err", err, "poll", poll)
			health.failed(err)
		} else {
			health.ok()
		}
		select {
		case <-ctx.Done():
			return st, nil
		case <-time.After(poll):
		}
	}
}

// startSource makes sure the source's topics exist and works out where it
// resumes (checkpoint, the raw topic's last record, or the lake's position
// when the broker changed). It returns the checkpoint to produce from.
func (a *App) startSource(ctx context.Context, src *sources.Opened) (connectors.Checkpoint, error) {
	name := src.Def.Name
	if err := a.Client.EnsureTopics(ctx, connectors.RawTopic(name), connectors.DLQTopic(name)); err != nil {
		return connectors.Checkpoint{}, err
	}
	cp, err := connectors.LoadCheckpoint(a.Cfg.DataDir, name)
	if err != nil {
		return connectors.Checkpoint{}, err
	}
	lakePos := func(ctx context.Context) (connectors.Positions, error) {
		st, err := a.Lake.State(ctx, src.Schema.Table)
		if errors.Is(err, warehouse.ErrNoTable) {
			return connectors.Positions{}, nil
		}
		if err != nil {
			return nil, err
		}
		pos := connectors.Positions{}
		for key, p := range st.Cursors {
			// A routed topic keeps a mark per stream and partition: the
			// stream resumes from the lowest (what is above it in another
			// partition is dropped there by its own mark).
			stream := key
			if src.Schema.RouteBy != "" {
				stream, _, _ = lakewriter.SplitPartitionStream(key)
			}
			if cur, ok := pos[stream]; !ok || p < cur.Pos {
				pos[stream] = connectors.Cursor{Stream: stream, Pos: p, Token: st.Tokens[key]}
			}
		}
		return pos, nil
	}
	return connectors.Resume(ctx, a.Client, name, cp, lakePos, a.Log, src.Schema.RouteBy != "")
}

// RunWriter runs a source's lake writer until ctx is done. The writer reads
// raw.<source>, so the topics are made first (the source makes them too;
// whichever starts first); like RunSource, a failure to make them is
// retried with backoff, logged and shown on the source's freshness path
// ("lake writer: …"), never the end of the writer. w.Run retries its own
// failures.
func (a *App) RunWriter(ctx context.Context, src *sources.Opened, w *lakewriter.Writer) error {
	name := src.Def.Name
	health := a.health(src, "lake writer")
	for attempt := 1; ; attempt++ {
		err := a.Client.EnsureTopics(ctx, connectors.RawTopic(name), connectors.DLQTopic(name))
		if err == nil {
			health.ok()
			break
		}
		if ctx.Err() != nil || !a.retry(ctx, health, attempt, err, "湖写入器启动失败，稍后重试 lake writer could not start; retrying", "source", name, "table", src.Schema.Table) {
			return nil
		}
	}
	if a.Cfg.LakeWriter.Partitioned {
		return w.RunGroup(ctx, 10*time.Second)
	}
	return w.Run(ctx)
}

// Backoff is how long something that failed to start waits before it tries
// again: Min after the first failure, doubled after each further one, at
// most Max; a quarter of each wait is random, so that the sources that
// failed together (a broker that did not answer) do not all retry at once.
type Backoff struct {
	Min, Max time.Duration
}

// DefaultStartBackoff is App.StartBackoff when it is zero: 1 s, 2 s, 4 s …
// up to 30 s, as the lake writer's own retries.
func DefaultStartBackoff() Backoff { return Backoff{Min: time.Second, Max: 30 * time.Second} }

// wait is the wait before attempt+1 after attempt failures.
func (b Backoff) wait(attempt int) time.Duration {
	if b.Min <= 0 || b.Max <= 0 {
		b = DefaultStartBackoff()
	}
	d := b.Min
	for i := 1; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	if q := int64(d / 4); q > 0 {
		d -= time.Duration(rand.Int64N(q))
	}
	return d
}

// retry logs a failed start (warn, error once it has failed for a minute),
// reports it on the freshness path and waits before the next attempt; it
// returns false if ctx ended meanwhile.
func (a *App) retry(ctx context.Context, h *sourceHealth, attempt int, err error, msg string, attrs ...any) bool {
	h.failed(err)
	wait := a.StartBackoff.wait(attempt)
	level := slog.LevelWarn
	if h.failingFor() >= time.Minute {
		level = slog.LevelError
	}
	a.Log.Log(ctx, level, msg, append(attrs, "attempt", attempt, "retry_in", wait.Round(time.Millisecond),
		"failing_for", h.failingFor().Round(time.Second), "err", err)...)
	select {
	case <-ctx.Done():
		return false
	case <-time.After(wait):
		return true
	}
}

// sourceHealth shows one part of a source's path (its connector, its lake
// writer's start) failing on the source's freshness path, which the lake
// writer reports to as well (source/<source>/<table>; a commit clears it).
type sourceHealth struct {
	fresh  *freshness.Registry
	path   freshness.Path
	prefix string    // "connector: ", put before the error
	since  time.Time // first failure of the current run; zero: working
}

func (a *App) health(src *sources.Opened, part string) *sourceHealth {
	return &sourceHealth{fresh: a.Fresh, prefix: part + ": ",
		path: freshness.Path{Component: "source", Name: src.Def.Name, Table: src.Schema.Table}}
}

// failed sets the path's error and makes it pending since the first
// failure (unless something older is pending): a source that keeps
// failing ages into warn and then error like a stuck writer.
func (h *sourceHealth) failed(err error) {
	if h.since.IsZero() {
		h.since = time.Now()
	}
	h.fresh.Update(h.path, func(s *freshness.State) {
		s.Err = h.prefix + err.Error()
		if s.PendingSince.IsZero() || s.PendingSince.After(h.since) {
			s.PendingSince = h.since
		}
	})
}

// ok clears what failed set (an error or pending time another part has
// set since is left alone).
func (h *sourceHealth) ok() {
	if h.since.IsZero() {
		return
	}
	since := h.since
	h.since = time.Time{}
	h.fresh.Update(h.path, func(s *freshness.State) {
		if strings.HasPrefix(s.Err, h.prefix) {
			s.Err = ""
		}
		if s.PendingSince.Equal(since) {
			s.PendingSince = time.Time{}
		}
	})
}

func (h *sourceHealth) failingFor() time.Duration {
	if h.since.IsZero() {
		return 0
	}
	return time.Since(h.since)
}

// NewWriter returns the lake writer of a source.
func (a *App) NewWriter(src *sources.Opened) *lakewriter.Writer {
	w := lakewriter.New(a.Cfg.LakeWriter, a.Lake, a.Client, src.Def.Name, src.Schema, a.Log)
	// Validate checked the policy.
	_ = w.SetPolicy(src.Def.Dedup)
	return w
}

// SourceStatus is one source's health.
type SourceStatus struct {
	Source     string `json:"source"`
	Table      string `json:"table"`
	Topic      string `json:"topic"`
	TopicEnd   int64  `json:"topic_end"`
	LakeOffset int64  `json:"lake_offset"`
	Lag        int64  `json:"lag"`
	// Rejects are the dead letters no replay has taken yet; Replayed the
	// letters replays wrote to the lake.
	Rejects    int64     `json:"rejects"`
	Replayed   int64     `json:"replayed"`
	LastReplay time.Time `json:"last_replay,omitzero"`
	Rows       int64     `json:"rows"`
	Snapshot   int64     `json:"snapshot"`
	LastCommit time.Time `json:"last_commit"`
	Note       string    `json:"note,omitempty"`
}

// Status reports lag, rejects and the last commit per source.
func (a *App) Status(ctx context.Context) ([]SourceStatus, error) {
	tables, err := a.Lake.Tables(ctx)
	if err != nil {
		return nil, err
	}
	byName := map[string]warehouse.TableInfo{}
	for _, t := range tables {
		byName[t.Name] = t
	}
	cluster := ""
	if a.Client != nil {
		if cluster, err = a.Client.ClusterID(ctx); err != nil {
			return nil, err
		}
	}
	var out []SourceStatus
	for _, d := range a.Cfg.Defs {
		s, err := a.Reg.Get(d.Schema)
		if err != nil {
			return nil, err
		}
		st := SourceStatus{Source: d.Name, Table: s.Table, Topic: connectors.RawTopic(d.Name)}
		if t, ok := byName[s.Table]; ok && t.Err != "" {
			st.Note = "数据表已损坏 table damaged: " + t.Err + "; " + warehouse.DamagedHint
		} else if ok {
			st.Rows, st.Snapshot, st.LastCommit = t.Rows, t.SnapshotID, t.Committed
			for _, o := range t.State.Offsets[st.Topic] {
				st.LakeOffset += o
			}
			if t.State.Cluster != "" && cluster != "" && t.State.Cluster != cluster {
				st.Note = "lake offsets belong to another Kafka cluster; the writer will re-read and de-duplicate"
			}
		}
		if a.Client != nil {
			ends, err := a.Client.EndOffsets(ctx, st.Topic)
			if err != nil {
				return nil, err
			}
			for _, e := range ends {
				st.TopicEnd += e
			}
			dl, err := a.Client.EndOffsets(ctx, connectors.DLQTopic(d.Name))
			if err != nil {
				return nil, err
			}
			starts, _ := a.Client.StartOffsets(ctx, connectors.DLQTopic(d.Name))
			log, err := connectors.ReadReplayLog(ctx, a.Client, d.Name)
			if err != nil {
				return nil, err
			}
			through := map[int]int64{}
			for _, e := range log {
				for p, o := range e.Through {
					through[p] = max(through[p], o)
				}
				for _, rs := range e.Replayed {
					for _, r := range rs {
						st.Replayed += r[1] - r[0] + 1
					}
				}
				st.LastReplay = e.At
			}
			for p, e := range dl {
				st.Rejects += max(e-max(starts[p], through[p]), 0)
			}
			if st.Note == "" {
				st.Lag = max(st.TopicEnd-st.LakeOffset, 0)
			}
		}
		out = append(out, st)
	}
	return out, nil
}

// CatchUp writes everything now in raw.<source> into the lake and returns
// once it is committed (for one-shot commands when no serve is running).
func (a *App) CatchUp(ctx context.Context, src *sources.Opened) (*lakewriter.Writer, error) {
	w := a.NewWriter(src)
	defer w.Close()
	w.StopAtEnd = true
	if err := w.Run(ctx); err != nil {
		return w, err
	}
	return w, ctx.Err()
}

// ReplayDLQ maps the source's dead letters again (after a mapping fix) and
// produces those that now pass; see connectors.Replay.
func (a *App) ReplayDLQ(ctx context.Context, src *sources.Opened) (connectors.ReplayResult, error) {
	rp, ok := src.Source.(connectors.Reparser)
	if !ok {
		return connectors.ReplayResult{}, fmt.Errorf("the %s transport cannot re-read dead letters", src.Def.Transport)
	}
	cp, err := connectors.LoadCheckpoint(a.Cfg.DataDir, src.Def.Name)
	if err != nil {
		return connectors.ReplayResult{}, err
	}
	prod := connectors.NewProducer(a.Client, src.Def.Name, src.Schema, a.Cfg.DataDir, cp)
	defer prod.Close()
	return connectors.Replay(ctx, a.Client, src.Def.Name, src.Schema, rp, prod)
}
