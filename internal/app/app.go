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
	"os"
	"path/filepath"
	"syscall"
	"time"

	"citybrain/connectors"
	"citybrain/connectors/sources"
	"citybrain/internal/broker"
	"citybrain/internal/config"
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
	lock     *os.File
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
	} else if mode == AttachBroker && ServeRunning(cfg.DataDir) {
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
func ServeRunning(dataDir string) bool {
	f, err := os.OpenFile(lockPath(dataDir), os.O_RDWR, 0o644)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return true
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false
}

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
func (a *App) RunSource(ctx context.Context, src *sources.Opened, poll time.Duration) (IngestStats, error) {
	name := src.Def.Name
	if err := a.Client.EnsureTopics(ctx, connectors.RawTopic(name), connectors.DLQTopic(name)); err != nil {
		return IngestStats{}, err
	}
	cp, err := connectors.LoadCheckpoint(a.Cfg.DataDir, name)
	if err != nil {
		return IngestStats{}, err
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
		for stream, p := range st.Cursors {
			pos[stream] = connectors.Cursor{Stream: stream, Pos: p, Token: st.Tokens[stream]}
		}
		return pos, nil
	}
	from, cluster, err := connectors.Resume(ctx, a.Client, name, cp, lakePos, a.Log)
	if err != nil {
		return IngestStats{}, err
	}
	cp.Cluster, cp.Positions = cluster, from
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
		}
		select {
		case <-ctx.Done():
			return st, nil
		case <-time.After(poll):
		}
	}
}

// NewWriter returns the lake writer of a source.
func (a *App) NewWriter(src *sources.Opened) *lakewriter.Writer {
	return lakewriter.New(a.Cfg.LakeWriter, a.Lake, a.Client, src.Def.Name, src.Schema, a.Log)
}

// SourceStatus is one source's health.
type SourceStatus struct {
	Source     string    `json:"source"`
	Table      string    `json:"table"`
	Topic      string    `json:"topic"`
	TopicEnd   int64     `json:"topic_end"`
	LakeOffset int64     `json:"lake_offset"`
	Lag        int64     `json:"lag"`
	Rejects    int64     `json:"rejects"`
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
		if t, ok := byName[s.Table]; ok {
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
			for p, e := range dl {
				st.Rejects += e - starts[p]
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
