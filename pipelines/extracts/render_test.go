package extracts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"
)

// The table-driven GB18030 encoder gives exactly the x/text encoder's
// bytes: every BMP rune, some beyond it, invalid UTF-8, mixed text.
func TestGB18030MatchesXText(t *testing.T) {
	var all []byte
	for r := rune(0); r < 0x10000; r++ {
		if r >= 0xD800 && r <= 0xDFFF {
			continue
		}
		all = utf8.AppendRune(all, r)
	}
	for _, r := range []rune{0x10000, 0x1F600, 0x20000, 0x2A6D6, 0x10FFFF} {
		all = utf8.AppendRune(all, r)
	}
	all = append(all, "西城区 \xff\xfe 警情 \xe4\xb8"...) // invalid bytes, a cut rune
	all = append(all, "\x80end"...)
	want, err := simplifiedchinese.GB18030.NewEncoder().Bytes(all)
	if err != nil {
		t.Fatal(err)
	}
	if got := appendGB18030(nil, all); !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Fatalf("GB18030 differs from x/text at byte %d (got %d bytes, want %d)", i, len(got), len(want))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		var s []byte
		for range rng.IntN(40) {
			switch rng.IntN(3) {
			case 0:
				s = append(s, byte(rng.IntN(128)))
			case 1:
				s = utf8.AppendRune(s, rune(0x4E00+rng.IntN(0x5000)))
			default:
				s = append(s, byte(rng.IntN(256)))
			}
		}
		want, _ := simplifiedchinese.GB18030.NewEncoder().Bytes(s)
		if got := appendGB18030(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("GB18030 of %q: got % x, want % x", s, got, want)
		}
	}
}

// The column renderers write what text() and appendCSVField write.
func TestCSVCellsMatchText(t *testing.T) {
	sh, _ := time.LoadLocation("Asia/Shanghai")
	for _, s := range []string{"", "a", " a", "a ", "a,b", `say "hi"`, "=1+1", "+86", "-5", "-x", "-.5", "@x", "\tx", "\rx",
		"=a,b", "line\nbreak", "西城区", "-", "'"} {
		want := appendCSVField(nil, []byte(s), true)
		if got := appendCSVText(nil, s); !bytes.Equal(got, want) {
			t.Errorf("cell %q: got %q, want %q", s, got, want)
		}
	}
	for _, us := range []int64{0, 1, -1, 1_700_000_000_123_456, 1_700_000_000_000_000, 1_700_000_000_100_000, -62_135_596_800_000_000, 253_402_300_799_999_999, 4_000_000_000_000_000} {
		for _, loc := range []*time.Location{time.UTC, sh} {
			k := kTimestampTZ
			if loc == time.UTC {
				k = kTimestamp
			}
			want := text(time.UnixMicro(us).UTC(), k, sh, nil)
			if got := appendMicros(nil, us, loc); !bytes.Equal(got, want) {
				t.Errorf("timestamp %d in %s: got %q, want %q", us, loc, got, want)
			}
		}
	}
	for _, days := range []int64{0, -1, 20000, -719162, 2932896} {
		want := text(time.Unix(days*86400, 0).UTC(), kDate, time.UTC, nil)
		if got := appendDate(nil, days); !bytes.Equal(got, want) {
			t.Errorf("date %d: got %q, want %q", days, got, want)
		}
	}
	for _, f := range []float64{0, 1.5, -2.25, 116.30001, 1e-7, 1e15, 123456789012345.6, math.Copysign(0, -1)} {
		if got, want := appendFloat(nil, f), text(f, kFloat, time.UTC, nil); !bytes.Equal(got, want) {
			t.Errorf("float %v: got %q, want %q", f, got, want)
		}
	}
}

// A Parquet extract of several row groups and hundreds of batches, with a
// hashed column and nulls, read back by DuckDB's own Parquet reader: every
// cell, the order, and the row groups. (The column writers run on
// goroutines of their own; this is where a mix-up of batches would show.)
func TestParquetRowGroupsReadBack(t *testing.T) {
	if testing.Short() {
		t.Skip("300,000 rows: not with -short")
	}
	e := newEnv(t)
	e.fillIncidents(t, 500, 300_000)
	d := incidentsDef("many-groups", "east", "parquet", "")
	d.PII = []PIIRule{{Column: "title", Action: "hash", Salt: "s"}}
	r := e.runner(t, d)
	ctx := context.Background()
	m, err := r.Run(ctx, d.Name, RunOptions{Period: period, NoDeliver: true})
	if err != nil {
		t.Fatal(err)
	}
	if m.Rows != 150_250 {
		t.Fatalf("%d rows, want 150,250 (the east half)", m.Rows)
	}
	p := strings.ReplaceAll(r.FilePath(m), "'", "''")
	one := func(q string) int64 {
		t.Helper()
		rows, err := e.eng.Query(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		defer rows.Close()
		var n int64
		if !rows.Next() {
			t.Fatalf("%s: no row", q)
		}
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := one(fmt.Sprintf("SELECT count(DISTINCT row_group_id) FROM parquet_metadata('%s')", p)); n != 2 {
		t.Errorf("%d row groups, want 2 (122,880 rows each at most)", n)
	}
	if n := one(fmt.Sprintf(`SELECT count(*) FROM read_parquet('%s') f JOIN raw.incidents s USING (id)
		WHERE s.street_code = '%s' AND (f.received_at IS DISTINCT FROM s.received_at OR f.category IS DISTINCT FROM s.category
		OR f.address IS DISTINCT FROM s.address OR f.latitude IS DISTINCT FROM s.latitude OR f.source_system IS DISTINCT FROM s.source_system
		OR f.street_code IS DISTINCT FROM s.street_code OR f.title IS DISTINCT FROM sha256('s' || s.title))`, p, streetEast)); n != 0 {
		t.Errorf("%d rows differ from the lake", n)
	}
	if n := one(fmt.Sprintf("SELECT count(DISTINCT id) FROM read_parquet('%s') f JOIN raw.incidents s USING (id) WHERE s.street_code = '%s'", p, streetEast)); n != 150_250 {
		t.Errorf("%d distinct lake rows in the file, want 150,250", n)
	}
	if n := one(fmt.Sprintf("SELECT count(*) FROM (SELECT id, lag(id) OVER (ORDER BY file_row_number) AS prev FROM read_parquet('%s', file_row_number = true)) WHERE prev >= id", p)); n != 0 {
		t.Errorf("%d rows out of order", n)
	}
	if n := one(fmt.Sprintf("SELECT count(*) FROM read_parquet('%s') WHERE latitude IS NULL", p)); n == 0 {
		t.Error("no null latitudes: the nulls were lost")
	}
}

// failAfter accepts n bytes, then fails every write.
type failAfter struct{ n int }

var errDiskFull = errors.New("disk full")

func (f *failAfter) Write(p []byte) (int, error) {
	if f.n < len(p) {
		return 0, errDiskFull
	}
	f.n -= len(p)
	return len(p), nil
}

// A write error of the CSV writer's writing goroutine reaches the caller
// (by a later Batch or by Close), in both encodings.
func TestCSVWriteErrorReported(t *testing.T) {
	batch, cols := benchBatch(2048)
	for _, enc := range []string{"", "gb18030"} {
		w := newCSV(&failAfter{n: 300 << 10}, Definition{Encoding: enc})
		if err := w.Header(cols); err != nil {
			t.Fatal(err)
		}
		var err error
		for range 20 {
			if err = w.Batch(batch); err != nil {
				break
			}
		}
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if !errors.Is(err, errDiskFull) {
			t.Errorf("encoding %q: error %v, want the writer's %v", enc, err, errDiskFull)
		}
	}
}

// A write error of a Parquet row group's commit (on the committer
// goroutine) reaches the caller, every batch is given back, and nothing
// hangs; so does an abort in the middle of a row group.
func TestParquetWriteErrorReported(t *testing.T) {
	batch, cols := benchBatch(2048)
	for _, abort := range []bool{false, true} {
		limit := 300 << 10
		if abort {
			limit = 1 << 40 // no write error: the abort alone
		}
		w := newParquet(&failAfter{n: limit}, Definition{}).(*parquetWriter)
		if err := w.Header(cols); err != nil {
			t.Fatal(err)
		}
		var given atomic.Int32
		var err error
		sent := 0
		for range 200 { // 409,600 rows: four row groups
			sent++
			if err = w.BatchAsync(batch, func() { given.Add(1) }); err != nil {
				break
			}
			if abort && sent == 70 {
				break
			}
		}
		if abort {
			w.Abort()
			if err != nil {
				t.Errorf("abort: the first 70 batches failed: %v", err)
			}
		} else if cerr := w.Close(); err == nil {
			err = cerr
		}
		if !abort && !errors.Is(err, errDiskFull) {
			t.Errorf("error %v, want the writer's %v", err, errDiskFull)
		}
		if int(given.Load()) != sent {
			t.Errorf("abort=%v: %d of %d batches given back", abort, given.Load(), sent)
		}
	}
}
