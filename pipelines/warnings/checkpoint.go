package warnings

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"

	"citybrain/warehouse/objstore"
)

// Checkpoints of a partitioned engine's units (docs/roles.md). A unit's
// state is its DuckDB file — rules' state, lifecycle, input offsets, outbox
// and notification queue, consistent at a batch boundary — so a checkpoint is
// that file, copied after a DuckDB CHECKPOINT with the engine locked, and
// uploaded to the lake's store (the object store, or the warehouse directory
// of a local lake) at
//
//	_warnings_state/<unit>/<generation>-<seq>.duckdb
//
// An instance that is given a unit restores the newest checkpoint (highest
// generation, then sequence) and reads the topics from the offsets it holds:
// the state is never rebuilt from the beginning of time. The unit's sink
// commits to marts.warnings only the transitions a checkpoint covers
// (Sink.Limit), so a new owner, which replays from the checkpoint, never
// makes again a transition the table holds; what the old owner evaluated
// after its last checkpoint is evaluated again by the new one, once.

// checkpointPrefix is where the checkpoints are in the side store.
const checkpointPrefix = "_warnings_state"

// Checkpoint names one uploaded checkpoint.
type Checkpoint struct {
	Key string
	Gen int64 // the owner's consumer-group generation
	Seq int64 // the unit's sequence at the checkpoint: its outbox up to Seq is covered
}

// Checkpoints keeps the units' checkpoints in a store.
type Checkpoints struct {
	Store objstore.Store
	// Keep is how many checkpoints of a unit are kept (at least 2).
	Keep int
}

func unitPrefix(u Unit) string { return checkpointPrefix + "/" + u.Name() + "/" }

// Save uploads a checkpoint of eng's state, taken now, for generation gen.
func (c *Checkpoints) Save(ctx context.Context, eng *Engine, gen int64) (Checkpoint, error) {
	tmp, err := os.CreateTemp(os.TempDir(), "citybrain-warnings-checkpoint-*.duckdb")
	if err != nil {
		return Checkpoint{}, err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	seq, err := eng.snapshot(ctx, tmp.Name())
	if err != nil {
		return Checkpoint{}, err
	}
	cp := Checkpoint{Gen: gen, Seq: seq}
	cp.Key = fmt.Sprintf("%s%012d-%015d.duckdb", unitPrefix(eng.unit), gen, seq)
	if err := c.Store.PutFile(ctx, cp.Key, tmp.Name()); err != nil {
		return Checkpoint{}, fmt.Errorf("预警检查点上传失败 upload warnings checkpoint %s: %w", cp.Key, err)
	}
	c.prune(ctx, eng.unit)
	return cp, nil
}

// List returns the unit's checkpoints, oldest first.
func (c *Checkpoints) List(ctx context.Context, u Unit) ([]Checkpoint, error) {
	objs, err := c.Store.List(ctx, unitPrefix(u))
	if err != nil {
		return nil, err
	}
	var out []Checkpoint
	for _, o := range objs {
		name := strings.TrimSuffix(path.Base(o.Key), ".duckdb")
		g, s, ok := strings.Cut(name, "-")
		if !ok || !strings.HasSuffix(o.Key, ".duckdb") {
			continue
		}
		gen, err1 := strconv.ParseInt(g, 10, 64)
		seq, err2 := strconv.ParseInt(s, 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, Checkpoint{Key: o.Key, Gen: gen, Seq: seq})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Gen != out[j].Gen {
			return out[i].Gen < out[j].Gen
		}
		return out[i].Seq < out[j].Seq
	})
	return out, nil
}

// Latest is the unit's newest checkpoint (ok false: none yet).
func (c *Checkpoints) Latest(ctx context.Context, u Unit) (Checkpoint, bool, error) {
	l, err := c.List(ctx, u)
	if err != nil || len(l) == 0 {
		return Checkpoint{}, false, err
	}
	return l[len(l)-1], true, nil
}

// Fetch downloads a checkpoint to the local file at dst (replacing it and its WAL).
func (c *Checkpoints) Fetch(ctx context.Context, cp Checkpoint, dst string) error {
	rc, err := c.Store.Get(ctx, cp.Key)
	if err != nil {
		return fmt.Errorf("预警检查点下载失败 fetch warnings checkpoint %s: %w", cp.Key, err)
	}
	defer rc.Close()
	tmp := dst + ".fetch"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("预警检查点下载失败 fetch warnings checkpoint %s: %w", cp.Key, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	os.Remove(dst + ".wal")
	return os.Rename(tmp, dst)
}

// prune deletes all but the newest Keep checkpoints of the unit.
func (c *Checkpoints) prune(ctx context.Context, u Unit) {
	l, err := c.List(ctx, u)
	if err != nil {
		return
	}
	keep := max(c.Keep, 2)
	for i := 0; i < len(l)-keep; i++ {
		c.Store.Delete(ctx, l[i].Key)
	}
}

// snapshot copies the state, checkpointed, to dst and returns the sequence it covers.
// The engine is locked for the CHECKPOINT only: after it, batches append to
// the WAL and leave the file as it is, so the copy runs beside them (while
// no other checkpoint may start); a file that changed under the copy (DuckDB
// checkpointing at a commit past its threshold) is copied again, locked.
func (e *Engine) snapshot(ctx context.Context, dst string) (int64, error) {
	if e.path == "" {
		return 0, errors.New("an in-memory warnings state has no checkpoint")
	}
	e.ckMu.Lock()
	defer e.ckMu.Unlock()
	e.mu.Lock()
	if _, err := e.conn.ExecContext(ctx, "CHECKPOINT"); err != nil {
		e.mu.Unlock()
		return 0, fmt.Errorf("预警状态库检查点失败 warnings state checkpoint: %w", err)
	}
	e.dirty = false
	seq := e.lc.seq
	before, err := os.Stat(e.path)
	e.mu.Unlock()
	if err != nil {
		return 0, err
	}
	if err := copyFile(e.path, dst); err != nil {
		return 0, err
	}
	if after, err := os.Stat(e.path); err == nil && after.ModTime().Equal(before.ModTime()) && after.Size() == before.Size() {
		return seq, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, err := e.conn.ExecContext(ctx, "CHECKPOINT"); err != nil {
		return 0, fmt.Errorf("预警状态库检查点失败 warnings state checkpoint: %w", err)
	}
	return e.lc.seq, copyFile(e.path, dst)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
