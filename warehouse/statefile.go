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
// A state file is written and synced before the commit that names it and
// never changed after. A snapshot's state file is needed as long as the
// snapshot is retained (StateOf walks back to the newest snapshot with a
// state); the maintainer deletes the others (removeStaleStates).

const stateFilePrefix = "citybrain-state-"

// stateFile is a state file's content.
type stateFile struct {
	Cursors map[string]int64  `json:"cursors"`
	Tokens  map[string]string `json:"tokens,omitempty"`
}

// stateCache holds parsed state files by location: they are immutable, and
// StateOf is read by every status page and writer restart.
var stateCache = struct {
	sync.Mutex
	m map[string]stateFile
}{m: map[string]stateFile{}}

const stateCacheMax = 256

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
	for _, s := range t.Metadata().Snapshots() {
		if s.Summary != nil {
			if f := s.Summary.Properties[summaryStateFile]; f != "" {
				named[filepath.Base(f)] = true
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
