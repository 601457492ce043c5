package broker

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"syscall"

	"github.com/segmentio/kafka-go"
)

// lowSpace is the free space under which a broker's "unknown server error"
// is taken for a full disk.
const lowSpace = 16 << 20

// Explain makes a produce error readable: kafka-go reports one error per
// record (thousands of identical "[-1] Unknown" lines for one cause), so
// they are counted by kind; and an unknown server error from the embedded
// broker while dataDir's file system is (nearly) full is reported as what
// it is, with what to do.
func Explain(err error, dataDir string) error {
	if err == nil {
		return nil
	}
	var we kafka.WriteErrors
	if errors.As(err, &we) {
		counts := map[string]int{}
		var first error
		for _, e := range we {
			if e == nil {
				continue
			}
			if first == nil {
				first = e
			}
			counts[e.Error()]++
		}
		kinds := make([]string, 0, len(counts))
		for k := range counts {
			kinds = append(kinds, k)
		}
		sort.Slice(kinds, func(i, j int) bool { return counts[kinds[i]] > counts[kinds[j]] })
		parts := make([]string, 0, min(len(kinds), 3))
		for i, k := range kinds {
			if i == 3 {
				parts = append(parts, fmt.Sprintf("… %d more kinds", len(kinds)-3))
				break
			}
			parts = append(parts, fmt.Sprintf("%d × %s", counts[k], k))
		}
		err = &summary{msg: fmt.Sprintf("%d of %d records not written: %s", we.Count(), len(we), strings.Join(parts, "; ")), err: first}
	}
	if dataDir != "" && errors.Is(err, kafka.Unknown) {
		var st syscall.Statfs_t
		if syscall.Statfs(dataDir, &st) == nil {
			if free := int64(st.Bavail) * int64(st.Bsize); free < lowSpace {
				return fmt.Errorf("no space left on device 磁盘空间已满: %s has %d bytes free and the broker cannot write its log; free space (or move data_dir) and run again — nothing acknowledged is lost (%w)", dataDir, free, err)
			}
		}
	}
	return err
}

// summary is a counted WriteErrors; it unwraps to the first error.
type summary struct {
	msg string
	err error
}

func (s *summary) Error() string { return s.msg }
func (s *summary) Unwrap() error { return s.err }
