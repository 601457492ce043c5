package warehouse

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	icebergio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
)

// State files.
//
// A writer's State rides in the summary of each snapshot it commits. The
// Kafka offsets are small; a file connector's cursors and tokens are one
// entry per file ever read and grow without bound. Past stateInlineMax they
// are written to a state file instead, and the summary names it:
//
//	<table>/metadata/citybrain-state-<batch>-<random>.json
//	{"cursors": {...}, "tokens": {...}}
//
// Most commits change few entries (the file being read, a new file, a
// stream's position), so a state file is usually a delta: the entries that
// differ from a full state file it names as its base. A full file is
// written when there is no base or the delta would exceed a quarter of the
// state's entries; a commit then writes what changed since the last full
// file, not the whole state (a replay of 10,000 dead letters leaves 10,000
// cursors behind, and the commits after it would rewrite them all).
//
//	{"base": "<location of a full state file>", "cursors": {changed}, "tokens": {changed}}
//
// Cursors and tokens are never removed from a State, so base + delta is the
// whole state. A state file is written and synced before the commit that
// names it and never changed after. A snapshot's state file (and its base)
// is needed as long as the snapshot is retained (StateOf walks back to the
// newest snapshot with a state); the maintainer deletes the others
// (removeStaleStates).

const stateFilePrefix = "citybrain-state-"

// stateFile is a state file's content.
type stateFile struct {
	// Base is the full state file this one is a delta of ("": it is full).
	Base    string            `json:"base,omitempty"`
	Cursors map[string]int64  `json:"cursors"`
	Tokens  map[string]string `json:"tokens,omitempty"`
}

// writeState writes s's cursors and tokens as a state file of t: a delta of
// the full state file t's current state is based on, or a full one.
func writeState(ctx context.Context, t *table.Table, s State) (string, error) {
	baseLoc, base := currentBase(t)
	if baseLoc != "" {
		d := stateFile{Base: baseLoc, Cursors: map[string]int64{}, Tokens: map[string]string{}}
		for k, v := range s.Cursors {
			if b, ok := base.Cursors[k]; !ok || b != v {
				d.Cursors[k] = v
			}
		}
		for k, v := range s.Tokens {
			if b, ok := base.Tokens[k]; !ok || b != v {
				d.Tokens[k] = v
			}
		}
		if (len(d.Cursors)+len(d.Tokens))*4 <= len(s.Cursors)+len(s.Tokens) {
			return writeStateFile(ctx, t, s.Batch, d)
		}
	}
	return writeStateFile(ctx, t, s.Batch, stateFile{Cursors: s.Cursors, Tokens: s.Tokens})
}

// currentBase is the full state file the state of t's current snapshot
// is (or is a delta of), and its content; "" when the state is inline or
// unreadable (then a full file is written).
func currentBase(t *table.Table) (string, stateFile) {
	loc := stateSummary(t)[summaryStateFile]
	if loc == "" {
		return "", stateFile{}
	}
	fsys, _ := t.FS(context.Background())
	sf, err := readStateFile(fsys, loc)
	if err != nil {
		return "", stateFile{}
	}
	if sf.Base == "" {
		return loc, sf
	}
	base, err := readStateFile(fsys, sf.Base)
	if err != nil || base.Base != "" {
		return "", stateFile{}
	}
	return sf.Base, base
}

// readState reads the state file at loc as a whole state: a delta is
// applied to its base.
func readState(fsys icebergio.IO, loc string) (stateFile, error) {
	sf, err := readStateFile(fsys, loc)
	if err != nil || sf.Base == "" {
		return sf, err
	}
	base, err := readStateFile(fsys, sf.Base)
	if err != nil {
		return sf, err
	}
	if base.Base != "" {
		return sf, fmt.Errorf("state file %s: its base %s is a delta too", loc, sf.Base)
	}
	whole := stateFile{Cursors: make(map[string]int64, len(base.Cursors)+len(sf.Cursors)), Tokens: make(map[string]string, len(base.Tokens)+len(sf.Tokens))}
	for k, v := range base.Cursors {
		whole.Cursors[k] = v
	}
	for k, v := range sf.Cursors {
		whole.Cursors[k] = v
	}
	for k, v := range base.Tokens {
		whole.Tokens[k] = v
	}
	for k, v := range sf.Tokens {
		whole.Tokens[k] = v
	}
	return whole, nil
}

// stateCache holds parsed state files by location: they are immutable, and
// StateOf is read by every status page and writer restart.
var stateCache = struct {
	sync.Mutex
	m map[string]stateFile
}{m: map[string]stateFile{}}

const stateCacheMax = 32 // a table reads its current base and delta; older entries are rarely asked for

// writeStateFile writes sf as a new state file of t for batch and returns
// its location.
func writeStateFile(ctx context.Context, t *table.Table, batch int64, sf stateFile) (string, error) {
	b, err := json.Marshal(sf)
	if err != nil {
		return "", err
	}
	rnd := make([]byte, 6)
	if _, err := rand.Read(rnd); err != nil {
		return "", err
	}
	loc := strings.TrimSuffix(t.Location(), "/") + "/metadata/" + stateFilePrefix + fmt.Sprintf("%012d-%s.json", batch, hex.EncodeToString(rnd))
	if p, ok := localLocation(loc); ok {
		if err := writeSynced(p, b); err != nil {
			return "", fmt.Errorf("state file: %w", err)
		}
		return loc, nil
	}
	fsys, err := t.FS(ctx)
	if err != nil {
		return "", err
	}
	w, ok := fsys.(icebergio.WriteFileIO)
	if !ok {
		return "", fmt.Errorf("state file %s: the table's file system cannot write", loc)
	}
	if err := w.WriteFile(loc, b); err != nil {
		return "", fmt.Errorf("state file: %w", err)
	}
	return loc, nil
}

// writeSynced writes b to a new file at p (through a temporary name, so the
// file is whole or absent) and syncs it and its directory.
func writeSynced(p string, b []byte) error {
	tmp := p + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return err
	}
	d, err := os.Open(filepath.Dir(p))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// readStateFile reads (or recalls) the state file at loc.
func readStateFile(fsys icebergio.IO, loc string) (stateFile, error) {
	stateCache.Lock()
	sf, ok := stateCache.m[loc]
	stateCache.Unlock()
	if ok {
		return sf, nil
	}
	var b []byte
	var err error
	if p, local := localLocation(loc); local {
		b, err = os.ReadFile(p)
	} else if fsys == nil {
		err = errors.New("no file system")
	} else {
		var f icebergio.File
		if f, err = fsys.Open(loc); err == nil {
			b, err = io.ReadAll(f)
			f.Close()
		}
	}
	if err != nil {
		return sf, fmt.Errorf("state file %s: %w", loc, err)
	}
	if err := json.Unmarshal(b, &sf); err != nil {
		return sf, fmt.Errorf("state file %s: %w", loc, err)
	}
	stateCache.Lock()
	if len(stateCache.m) >= stateCacheMax {
		for k := range stateCache.m { // any one: they are all cheap to read again
			delete(stateCache.m, k)
			break
		}
	}
	stateCache.m[loc] = sf
	stateCache.Unlock()
	return sf, nil
}

// localLocation is the local path of a file:// (or scheme-less) location.
func localLocation(loc string) (string, bool) {
	if p, ok := strings.CutPrefix(loc, "file://"); ok {
		return p, true
	}
	if strings.HasPrefix(loc, "/") {
		return loc, true
	}
	return "", false
}

// stateGrace: a state file younger than this is left alone even when no
// snapshot names it yet (a commit may be about to).
const stateGrace = time.Minute

// removeStaleStates deletes t's state files that no retained snapshot names
// and that no commit can still name: a writer's next commit names a state
// file of a higher batch than the current snapshot's, and a compaction's
// (which keeps the batch) is committed within stateGrace. Local tables only.
func removeStaleStates(t *table.Table, now time.Time) (int, error) {
	dir, ok := localLocation(strings.TrimSuffix(t.Location(), "/") + "/metadata")
	if !ok {
		return 0, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, nil
		}
		return 0, err
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), stateFilePrefix) {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return 0, nil
	}
	named := map[string]bool{}
	fsys, _ := t.FS(context.Background())
	for _, s := range t.Metadata().Snapshots() {
		if s.Summary != nil {
			if f := s.Summary.Properties[summaryStateFile]; f != "" {
				named[filepath.Base(f)] = true
				sf, err := readStateFile(fsys, f)
				if err != nil {
					return 0, err // keep everything while a named file cannot be read
				}
				if sf.Base != "" {
					named[filepath.Base(sf.Base)] = true
				}
			}
		}
	}
	st, err := StateOf(t)
	if err != nil {
		return 0, err
	}
	removed := 0
	var errs []error
	for _, n := range names {
		if named[n] {
			continue
		}
		batch, err := strconv.ParseInt(strings.SplitN(strings.TrimPrefix(n, stateFilePrefix), "-", 2)[0], 10, 64)
		if err != nil || batch > st.Batch {
			continue // not ours, or a writer's next commit
		}
		p := filepath.Join(dir, n)
		fi, err := os.Stat(p)
		if err != nil || now.Sub(fi.ModTime()) < stateGrace {
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		removed++
	}
	return removed, errors.Join(errs...)
}
