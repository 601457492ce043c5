package file_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"
	"golang.org/x/text/encoding/unicode"

	"citybrain/connectors"
	"citybrain/connectors/connectortest"
	"citybrain/connectors/file"
	"citybrain/connectors/mapping"
	"citybrain/schemas"
)

func signalMapper(t testing.TB) (*schemas.Schema, *mapping.Mapper) {
	t.Helper()
	reg, err := schemas.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	s, _ := reg.Get("mobile_signal")
	m, err := mapping.New(s, mapping.Spec{Fields: map[string]mapping.FieldSpec{
		"grid_cell_id": {Column: "cell"}, "window_start": {Column: "ts"}, "people_count": {Column: "n"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return s, m
}

// runFormat runs the conformance suite over files of one format written by
// write(path, from, to) into a drop directory.
func runFormat(t *testing.T, cfg file.Config, ext string, write func(t *testing.T, path string, from, to int)) {
	s, m := signalMapper(t)
	var dir string
	open := func(t *testing.T, paths ...string) connectors.Source {
		c := cfg
		c.Paths = paths
		c.BatchRows = 300
		src, err := file.New(c, m)
		if err != nil {
			t.Fatal(err)
		}
		return src
	}
	connectortest.Run(t, connectortest.Harness{
		New: func(t *testing.T, n int) connectors.Source {
			dir = t.TempDir()
			write(t, filepath.Join(dir, "a"+ext), 0, n/2)
			write(t, filepath.Join(dir, "b"+ext), n/2, n)
			return open(t, filepath.Join(dir, "*"+ext))
		},
		Append: func(t *testing.T, n, k int) { write(t, filepath.Join(dir, "c"+ext), n, n+k) },
		Key:    func(r connectors.Record) int { return int(r.Values[s.Index("people_count")].(int64)) },
		Broken: func(t *testing.T) connectors.Source { return open(t, filepath.Join(t.TempDir(), "missing"+ext)) },
	})
}

func writeJSONL(t testing.TB, path string, from, to int) {
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, `{"cell":"XC-%d","ts":"2026-11-01 08:00:00","n":%d,"meta":{"src":"op","tags":[1,2]}}`+"\n", i%50, i)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeXLSX(t testing.TB, path string, from, to int) {
	f := excelize.NewFile()
	defer f.Close()
	sw, err := f.NewStreamWriter("Sheet1")
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.SetRow("A1", []any{"cell", "ts", "n"}); err != nil {
		t.Fatal(err)
	}
	for i := from; i < to; i++ {
		cell, _ := excelize.CoordinatesToCellName(1, i-from+2)
		if err := sw.SetRow(cell, []any{fmt.Sprintf("XC-%d", i%50), "2026-11-01 08:00:00", i}); err != nil {
			t.Fatal(err)
		}
	}
	if err := sw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.SaveAs(path); err != nil {
		t.Fatal(err)
	}
}

type signalRow struct {
	Cell string    `parquet:"cell"`
	TS   time.Time `parquet:"ts,timestamp(millisecond)"`
	N    int64     `parquet:"n"`
}

func writeParquet(t testing.TB, path string, from, to int) {
	rows := make([]signalRow, 0, to-from)
	ts := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for i := from; i < to; i++ {
		rows = append(rows, signalRow{Cell: fmt.Sprintf("XC-%d", i%50), TS: ts, N: int64(i)})
	}
	writeParquetRows(t, path, rows, parquet.MaxRowsPerRowGroup(400))
}

func writeParquetRows[T any](t testing.TB, path string, rows []T, opts ...parquet.WriterOption) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := parquet.NewGenericWriter[T](f, opts...)
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestConformanceJSONL(t *testing.T) {
	runFormat(t, file.Config{Format: "jsonl"}, ".jsonl", func(t *testing.T, p string, from, to int) { writeJSONL(t, p, from, to) })
}

func TestConformanceXLSX(t *testing.T) {
	runFormat(t, file.Config{Format: "xlsx", Header: true}, ".xlsx", func(t *testing.T, p string, from, to int) { writeXLSX(t, p, from, to) })
}

func TestConformanceParquet(t *testing.T) {
	runFormat(t, file.Config{Format: "parquet"}, ".parquet", func(t *testing.T, p string, from, to int) { writeParquet(t, p, from, to) })
}

func readAllRecs(t *testing.T, src *file.Source, from connectors.Positions) []connectors.Record {
	t.Helper()
	var c collector
	if err := src.Read(context.Background(), from, c.emit); err != nil {
		t.Fatal(err)
	}
	return c.recs
}

func newSource(t *testing.T, cfg file.Config, m *mapping.Mapper) *file.Source {
	t.Helper()
	src, err := file.New(cfg, m)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// TestJSONLRejectsAndReparse: lines that are not objects or do not fit
// the mapping are rejects with their line as it was; HTML in a value is
// data; Reparse maps a fixed line.
func TestJSONLRejectsAndReparse(t *testing.T) {
	s, m := signalMapper(t)
	script := `<script>alert(1)</script>`
	lines := []string{
		`{"cell":"` + script + `","ts":"2026-11-01T08:00:00+08:00","n":1}`,
		`[1,2,3]`,
		`"just a string"`,
		``,
		`{"cell":"a","ts":"2026-11-01 08:00:00","n":"many"}`,
		`{"cell":"a","ts":"2026-11-01 08:00:00"}`,
		`{"cell":"b","ts":"2026-11-01 08:00:00","n":7} trailing`,
		`{"cell":"c","ts":"2026-11-01 08:00:00","n":8,"extra":{"deep":{"er":null}}}`,
		`{"cell":"d","ts":"2026-11-01 08:00:00","n":9`, // truncated mid-record at EOF
	}
	path := filepath.Join(t.TempDir(), "feed.jsonl")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\r\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	src := newSource(t, file.Config{Paths: []string{path}, Format: "jsonl"}, m)
	recs := readAllRecs(t, src, nil)
	if len(recs) != 8 {
		t.Fatalf("%d records, want 8 (the blank line is skipped): %+v", len(recs), recs)
	}
	wantGood := map[int64]bool{1: true, 8: true}
	for _, r := range recs {
		if wantGood[r.Cursor.Pos] != (r.Err == nil) {
			t.Errorf("line %d: err %v", r.Cursor.Pos, r.Err)
		}
		if r.Err != nil {
			if want := lines[r.Cursor.Pos-1]; string(r.Raw) != want {
				t.Errorf("line %d raw %q, want %q", r.Cursor.Pos, r.Raw, want)
			}
			if !strings.Contains(r.Err.Error(), fmt.Sprintf("line %d", r.Cursor.Pos)) {
				t.Errorf("reason %q does not name the line", r.Err)
			}
		}
	}
	if got := recs[0].Values[s.Index("grid_cell_id")]; got != script {
		t.Errorf("HTML not kept as data: %q", got)
	}
	if !strings.Contains(recs[1].Err.Error(), "not a JSON object") {
		t.Errorf("array line: %v", recs[1].Err)
	}
	// Reparse: the fixed line maps; a still-bad one still fails.
	if rec, err := src.Reparse([]byte(`{"cell":"a","ts":"2026-11-01 08:00:00","n":"5"}`), connectors.Cursor{Stream: "feed.jsonl"}); err != nil || rec[s.Index("people_count")] != int64(5) {
		t.Errorf("reparse: %v %v", rec, err)
	}
	if _, err := src.Reparse(recs[1].Raw, connectors.Cursor{Stream: "feed.jsonl"}); err == nil {
		t.Error("reparse of an array succeeded")
	}
	if err := src.Check(context.Background()); err != nil {
		t.Errorf("check: %v", err)
	}
}

func TestXLSXSheetDatesAndReparse(t *testing.T) {
	s, m := signalMapper(t)
	path := filepath.Join(t.TempDir(), "book.xlsx")
	f := excelize.NewFile()
	if _, err := f.NewSheet("数据"); err != nil {
		t.Fatal(err)
	}
	style, err := f.NewStyle(&excelize.Style{CustomNumFmt: ptr("yyyy-mm-dd hh:mm:ss")})
	if err != nil {
		t.Fatal(err)
	}
	set := func(cell string, v any) {
		if err := f.SetCellValue("数据", cell, v); err != nil {
			t.Fatal(err)
		}
	}
	set("A1", "cell")
	set("B1", "ts")
	set("C1", "n")
	set("A2", "西城-1")
	set("B2", time.Date(2026, 11, 1, 8, 30, 0, 0, time.UTC))
	set("C2", 12)
	f.SetCellStyle("数据", "B2", "B2", style)
	// Row 3 empty; row 4 has a bad count and a cell with a comma and quote.
	set("A4", `a,"b"`)
	set("B4", "2026-11-01 09:00:00")
	set("C4", "lots")
	set("A5", "c") // short row: missing cells are padded, n missing → reject
	if err := f.SaveAs(path); err != nil {
		t.Fatal(err)
	}
	f.Close()

	src := newSource(t, file.Config{Paths: []string{path}, Format: "xlsx", Sheet: "数据", Header: true}, m)
	recs := readAllRecs(t, src, nil)
	if len(recs) != 3 {
		t.Fatalf("%d records: %+v", len(recs), recs)
	}
	if r := recs[0]; r.Err != nil || r.Cursor.Pos != 2 || r.Cursor.Stream != "book.xlsx" ||
		!r.Values[s.Index("window_start")].(time.Time).Equal(time.Date(2026, 11, 1, 0, 30, 0, 0, time.UTC)) {
		t.Errorf("row 2: %+v (%v)", r, r.Err)
	}
	bad := recs[1]
	if bad.Err == nil || bad.Cursor.Pos != 4 || !strings.Contains(bad.Err.Error(), "row 4") {
		t.Fatalf("row 4: %+v", bad)
	}
	if want := `"a,""b""",2026-11-01 09:00:00,lots`; string(bad.Raw) != want {
		t.Errorf("raw %q, want %q", bad.Raw, want)
	}
	if recs[2].Err == nil || recs[2].Cursor.Pos != 5 {
		t.Errorf("row 5: %+v", recs[2])
	}
	fixed := strings.Replace(string(bad.Raw), "lots", "40", 1)
	rec, err := src.Reparse([]byte(fixed), connectors.Cursor{Stream: "book.xlsx"})
	if err != nil || rec[s.Index("grid_cell_id")] != `a,"b"` || rec[s.Index("people_count")] != int64(40) {
		t.Errorf("reparse: %v %v", rec, err)
	}
	// Resume after row 2 yields rows 4 and 5 only.
	if more := readAllRecs(t, src, connectors.Positions{"book.xlsx": {Stream: "book.xlsx", Pos: 2}}); len(more) != 2 || more[0].Cursor.Pos != 4 {
		t.Errorf("resume: %+v", more)
	}
	// A missing sheet is a permanent error naming the sheets there are.
	nosheet := newSource(t, file.Config{Paths: []string{path}, Format: "xlsx", Sheet: "nope", Header: true}, m)
	if err := nosheet.Read(context.Background(), nil, (&collector{}).emit); !errors.Is(err, connectors.ErrPermanent) || !strings.Contains(err.Error(), "数据") {
		t.Errorf("missing sheet: %v", err)
	}
	// Default sheet is the first one (Sheet1, empty): nothing, no error.
	if got := readAllRecs(t, newSource(t, file.Config{Paths: []string{path}, Format: "xlsx", Header: true}, m), nil); len(got) != 0 {
		t.Errorf("empty first sheet gave %d records", len(got))
	}
}

func ptr[T any](v T) *T { return &v }

type richRow struct {
	Cell  string    `parquet:"cell"`
	TS    time.Time `parquet:"ts,timestamp(microsecond)"`
	Local int64     `parquet:"local,timestamp(millisecond:local)"`
	Day   int32     `parquet:"day,date"`
	N     *int64    `parquet:"n,optional"`
	Price int64     `parquet:"price,decimal(2:10)"`
	Ratio float64   `parquet:"ratio"`
	Tags  []string  `parquet:"tags"`
	Geo   struct {
		Lat float64 `parquet:"lat"`
	} `parquet:"geo"`
}

func TestParquetValuesRejectsAndReparse(t *testing.T) {
	reg, _ := schemas.Builtin()
	s, _ := reg.Get("mobile_signal")
	m, err := mapping.New(s, mapping.Spec{Fields: map[string]mapping.FieldSpec{
		"grid_cell_id": {Template: "{cell}|{local}|{day}|{price}|{ratio}|{tags}|{geo.lat}"}, "window_start": {Column: "ts"}, "people_count": {Column: "n"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2026, 11, 1, 8, 0, 0, 123000, time.UTC)
	n := int64(3)
	rows := []richRow{
		{Cell: "<script>alert(1)</script>", TS: ts, Local: time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC).UnixMilli(), Day: 20758, N: &n, Price: -1234, Ratio: 0.5, Tags: []string{"x", `"y"`}},
		{Cell: "no count", TS: ts}, // n null → reject
	}
	rows[0].Geo.Lat = 39.9
	path := filepath.Join(t.TempDir(), "rich.parquet")
	writeParquetRows(t, path, rows)
	src := newSource(t, file.Config{Paths: []string{path}, Format: "parquet"}, m)
	recs := readAllRecs(t, src, nil)
	if len(recs) != 2 || recs[0].Err != nil || recs[0].Cursor.Pos != 1 {
		t.Fatalf("records %+v", recs)
	}
	want := `<script>alert(1)</script>|2026-11-01T08:00:00|2026-11-01|-12.34|0.5|["x","\"y\""]|39.9`
	if got := recs[0].Values[s.Index("grid_cell_id")]; got != want {
		t.Errorf("cells\n got %q\nwant %q", got, want)
	}
	if got := recs[0].Values[s.Index("window_start")].(time.Time); !got.Equal(ts) {
		t.Errorf("ts %v", got)
	}
	bad := recs[1]
	if bad.Err == nil || bad.Cursor.Pos != 2 || !strings.HasPrefix(string(bad.Raw), `{"cell":"no count","ts":"2026-11-01T08:00:00.000123Z"`) {
		t.Fatalf("reject %+v", bad)
	}
	fixed := strings.Replace(string(bad.Raw), `"n":""`, `"n":"9"`, 1)
	rec, err := src.Reparse([]byte(fixed), connectors.Cursor{Stream: "rich.parquet"})
	if err != nil || rec[s.Index("people_count")] != int64(9) {
		t.Errorf("reparse %s: %v %v", fixed, rec, err)
	}
	if err := src.Check(context.Background()); err != nil {
		t.Error(err)
	}
}

func TestAutoEncoding(t *testing.T) {
	s, m := signalMapper(t)
	dir := t.TempDir()
	text := "cell,ts,n\n西城区-官园,2026-11-01 08:00:00,1\n朝阳区-三里屯,2026-11-01 08:00:00,2\n"
	gb, err := simplifiedchinese.GB18030.NewEncoder().String(text)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "a-gb.csv"), []byte(gb), 0o644)
	os.WriteFile(filepath.Join(dir, "b-bom.csv"), []byte("\ufeff"+text), 0o644)
	os.WriteFile(filepath.Join(dir, "c-utf16.csv"), utf16LE("\ufeff"+text), 0o644)
	src := newSource(t, file.Config{Paths: []string{filepath.Join(dir, "*.csv")}, Header: true, Encoding: "auto"}, m)
	var seen []string
	src.OnDetect = func(p, enc string) { seen = append(seen, filepath.Base(p)+"="+enc) }
	recs := readAllRecs(t, src, nil)
	if len(recs) != 6 {
		t.Fatalf("%d records", len(recs))
	}
	for i, r := range recs {
		want := []string{"西城区-官园", "朝阳区-三里屯"}[i%2]
		if r.Err != nil || r.Values[s.Index("grid_cell_id")] != want {
			t.Errorf("%v: %v %v, want %s", r.Cursor, r.Values, r.Err, want)
		}
	}
	want := map[string]string{"a-gb.csv": "gb18030", "b-bom.csv": "utf-8", "c-utf16.csv": "utf-16"}
	for k, v := range want {
		if src.Detected()[k] != v {
			t.Errorf("detected %v, want %v", src.Detected(), want)
		}
	}
	if strings.Join(seen, " ") != "a-gb.csv=gb18030 b-bom.csv=utf-8 c-utf16.csv=utf-16" {
		t.Errorf("OnDetect calls %v", seen)
	}
	desc, err := src.Describe(context.Background())
	if err != nil || !strings.Contains(desc, "a-gb.csv: encoding gb18030 (detected)") {
		t.Errorf("describe %q %v", desc, err)
	}
	// jsonl in GB18030 too.
	js, _ := simplifiedchinese.GB18030.NewEncoder().String(`{"cell":"海淀区","ts":"2026-11-01 08:00:00","n":1}` + "\n")
	jp := filepath.Join(dir, "d.jsonl")
	os.WriteFile(jp, []byte(js), 0o644)
	jr := readAllRecs(t, newSource(t, file.Config{Paths: []string{jp}, Format: "jsonl", Encoding: "auto"}, m), nil)
	if len(jr) != 1 || jr[0].Err != nil || jr[0].Values[0] != "海淀区" {
		t.Errorf("gb18030 jsonl: %+v", jr)
	}
}

// summary describes records briefly (raw bytes can be megabytes).
func summary(recs []connectors.Record) string {
	var b strings.Builder
	for _, r := range recs {
		fmt.Fprintf(&b, "\n  %v raw %d bytes err %.200v", r.Cursor, len(r.Raw), r.Err)
	}
	return b.String()
}

func utf16LE(s string) []byte {
	var b []byte
	for _, r := range s {
		if r > 0xffff {
			panic("BMP only")
		}
		b = append(b, byte(r), byte(r>>8))
	}
	return b
}

func TestMaxRecordBytes(t *testing.T) {
	_, m := signalMapper(t)
	dir := t.TempDir()
	long := strings.Repeat("x", 3<<20)
	csvText := "cell,ts,n\na,2026-11-01 08:00:00,1\n" + long + ",2026-11-01 08:00:00,2\nb,2026-11-01 08:00:00,3\n" +
		"\"c\n" + strings.Repeat("y", 600) + "\",2026-11-01 08:00:00,4\nd,2026-11-01 08:00:00,5\n"
	os.WriteFile(filepath.Join(dir, "big.csv"), []byte(csvText), 0o644)
	jsonText := `{"cell":"a","ts":"2026-11-01 08:00:00","n":1}` + "\n" + `{"cell":"` + long + `"}` + "\n" + `{"cell":"b","ts":"2026-11-01 08:00:00","n":3}` + "\n"
	os.WriteFile(filepath.Join(dir, "big.jsonl"), []byte(jsonText), 0o644)

	t.Run("csv default 1 MiB", func(t *testing.T) {
		recs := readAllRecs(t, newSource(t, file.Config{Paths: []string{filepath.Join(dir, "big.csv")}, Header: true}, m), nil)
		if len(recs) != 5 || recs[0].Err != nil || recs[2].Err != nil || recs[3].Err != nil || recs[4].Cursor.Pos != 7 {
			t.Fatalf("records %s", summary(recs))
		}
		r := recs[1]
		if !errors.Is(r.Err, file.ErrTooLong) || r.Cursor.Pos != 3 || len(r.Raw) != 1<<20 ||
			!strings.Contains(r.Err.Error(), fmt.Sprint(len(long)+len(",2026-11-01 08:00:00,2"))) || !strings.Contains(r.Err.Error(), "1048576") {
			t.Errorf("too long: pos %d raw %d err %v", r.Cursor.Pos, len(r.Raw), r.Err)
		}
	})
	t.Run("csv multi-line record over a small limit", func(t *testing.T) {
		recs := readAllRecs(t, newSource(t, file.Config{Paths: []string{filepath.Join(dir, "big.csv")}, Header: true, MaxRecordBytes: 500}, m), nil)
		if len(recs) != 5 {
			t.Fatalf("%d records", len(recs))
		}
		if r := recs[3]; !errors.Is(r.Err, file.ErrTooLong) || r.Cursor.Pos != 5 || len(r.Raw) != 500 {
			t.Errorf("multi-line: %v %d %v", r.Cursor, len(r.Raw), r.Err)
		}
		if r := recs[4]; r.Err != nil || r.Cursor.Pos != 7 {
			t.Errorf("after: %+v", r)
		}
	})
	t.Run("jsonl", func(t *testing.T) {
		recs := readAllRecs(t, newSource(t, file.Config{Paths: []string{filepath.Join(dir, "big.jsonl")}, Format: "jsonl"}, m), nil)
		if len(recs) != 3 || recs[0].Err != nil || !errors.Is(recs[1].Err, file.ErrTooLong) || recs[2].Err != nil {
			t.Fatalf("records %s", summary(recs))
		}
	})
	t.Run("xlsx row", func(t *testing.T) {
		p := filepath.Join(dir, "big.xlsx")
		writeXLSX(t, p, 0, 3)
		recs := readAllRecs(t, newSource(t, file.Config{Paths: []string{p}, Format: "xlsx", Header: true, MaxRecordBytes: 10}, m), nil)
		if len(recs) != 3 || !errors.Is(recs[0].Err, file.ErrTooLong) || len(recs[0].Raw) != 10 {
			t.Fatalf("records %s", summary(recs))
		}
	})
	if _, err := file.New(file.Config{Paths: []string{"x"}, MaxRecordBytes: -1}, m); err == nil {
		t.Error("negative max_record_bytes accepted")
	}
}

func TestHostileInputs(t *testing.T) {
	_, m := signalMapper(t)
	dir := t.TempDir()
	garbage := make([]byte, 200<<10)
	x := uint32(2463534242)
	for i := range garbage {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		garbage[i] = byte(x)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name string
		cfg  file.Config
	}{
		{"garbage.csv", file.Config{Header: true, Encoding: "auto"}},
		{"garbage-noheader.csv", file.Config{Encoding: "gbk"}},
		{"garbage.jsonl", file.Config{Format: "jsonl", Encoding: "auto"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Paths = []string{write(tc.name, garbage)}
			src := newSource(t, tc.cfg, m)
			var c collector
			err := src.Read(context.Background(), nil, c.emit)
			if err != nil && !errors.Is(err, connectors.ErrPermanent) {
				t.Fatalf("garbage: %v", err)
			}
			for _, r := range c.recs {
				if r.Err == nil {
					t.Errorf("garbage mapped: %v", r.Values)
				}
			}
		})
	}
	t.Run("binary files in structured formats are permanent errors", func(t *testing.T) {
		for _, f := range []string{"xlsx", "parquet"} {
			src := newSource(t, file.Config{Paths: []string{write("garbage."+f, garbage)}, Format: f, Header: true}, m)
			if err := src.Read(context.Background(), nil, (&collector{}).emit); !errors.Is(err, connectors.ErrPermanent) {
				t.Errorf("%s: %v", f, err)
			}
			if err := src.Check(context.Background()); !errors.Is(err, connectors.ErrPermanent) {
				t.Errorf("%s check: %v", f, err)
			}
		}
	})
	t.Run("truncated files", func(t *testing.T) {
		good := filepath.Join(dir, "good.parquet")
		writeParquet(t, good, 0, 1000)
		b, _ := os.ReadFile(good)
		src := newSource(t, file.Config{Paths: []string{write("cut.parquet", b[:len(b)/2])}, Format: "parquet"}, m)
		if err := src.Read(context.Background(), nil, (&collector{}).emit); !errors.Is(err, connectors.ErrPermanent) {
			t.Errorf("truncated parquet: %v", err)
		}
		gx := filepath.Join(dir, "good.xlsx")
		writeXLSX(t, gx, 0, 1000)
		b, _ = os.ReadFile(gx)
		src = newSource(t, file.Config{Paths: []string{write("cut.xlsx", b[:len(b)/2])}, Format: "xlsx", Header: true}, m)
		if err := src.Read(context.Background(), nil, (&collector{}).emit); !errors.Is(err, connectors.ErrPermanent) {
			t.Errorf("truncated xlsx: %v", err)
		}
		// A CSV cut inside a quoted field: the last record is a reject.
		src = newSource(t, file.Config{Paths: []string{write("cut.csv", []byte("cell,ts,n\na,2026-11-01 08:00:00,1\n\"b,2026-11"))}, Header: true}, m)
		recs := readAllRecs(t, src, nil)
		if len(recs) != 2 || recs[0].Err != nil || recs[1].Err == nil || string(recs[1].Raw) != "\"b,2026-11" {
			t.Errorf("truncated csv: %+v", recs)
		}
	})
}

func TestConfigValidateFormats(t *testing.T) {
	for _, tc := range []struct {
		cfg  file.Config
		want string
	}{
		{file.Config{Paths: []string{"x"}, Format: "JSONL", Encoding: "AUTO"}, ""},
		{file.Config{Paths: []string{"x"}, Format: "ndjson", Encoding: "utf-16"}, ""},
		{file.Config{Paths: []string{"x"}, Format: "xlsx", Sheet: "S"}, ""},
		{file.Config{Paths: []string{"x"}, Format: "parquet", MaxRecordBytes: 10}, ""},
		{file.Config{Paths: []string{"x"}, Format: "xml"}, "file.format"},
		{file.Config{Paths: []string{"x"}, Sheet: "S"}, "file.sheet"},
		{file.Config{Paths: []string{"x"}, MaxRecordBytes: -5}, "file.max_record_bytes"},
	} {
		err := tc.cfg.Validate()
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

// TestWesternAndBig5Encodings: Latin-1 / Windows-1252 files (declared, and
// detected by auto: lone high bytes), Big5 files (declared, and detected by
// auto: the reading with common characters), UTF-16 (by its byte order
// mark) and UTF-8 with a BOM read as the text they hold; GB18030 is still
// what auto picks for simplified Chinese text.
func TestWesternAndBig5Encodings(t *testing.T) {
	s, m := signalMapper(t)
	dir := t.TempDir()
	// Latin-1 bytes as a bike counter in Zürich or Montréal would send them.
	latin, err := charmap.ISO8859_1.NewEncoder().String("cell;ts;n\nZürich-Nord;2026-11-01 08:00:00;1\nMontréal-Café;2026-11-01 08:00:00;2\n")
	if err != nil {
		t.Fatal(err)
	}
	big5, err := traditionalchinese.Big5.NewEncoder().String("cell;ts;n\n臺北-信義;2026-11-01 08:00:00;1\n高雄-鹽埕;2026-11-01 08:00:00;2\n")
	if err != nil {
		t.Fatal(err)
	}
	gb, err := simplifiedchinese.GB18030.NewEncoder().String("cell;ts;n\n西城区-官园;2026-11-01 08:00:00;1\n朝阳区-三里屯;2026-11-01 08:00:00;2\n")
	if err != nil {
		t.Fatal(err)
	}
	utf16, err := unicode.UTF16(unicode.LittleEndian, unicode.UseBOM).NewEncoder().String("cell;ts;n\n西城区-官园;2026-11-01 08:00:00;1\n臺北-信義;2026-11-01 08:00:00;2\n")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, body, encoding, detected string
		want                           []string
	}{
		{"latin-1", latin, "latin-1", "", []string{"Zürich-Nord", "Montréal-Café"}},
		{"windows-1252", latin, "cp1252", "", []string{"Zürich-Nord", "Montréal-Café"}},
		{"latin-1 auto", latin, "auto", "windows-1252", []string{"Zürich-Nord", "Montréal-Café"}},
		{"big5", big5, "big5", "", []string{"臺北-信義", "高雄-鹽埕"}},
		{"big5 auto", big5, "auto", "big5", []string{"臺北-信義", "高雄-鹽埕"}},
		{"utf-16 auto", utf16, "auto", "utf-16", []string{"西城区-官园", "臺北-信義"}},
		{"utf-8 bom auto", "\ufeffcell;ts;n\n西城区-官园;2026-11-01 08:00:00;1\nZürich-Nord;2026-11-01 08:00:00;2\n", "auto", "utf-8", []string{"西城区-官园", "Zürich-Nord"}},
		{"gb18030 auto", gb, "auto", "gb18030", []string{"西城区-官园", "朝阳区-三里屯"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".csv")
			os.WriteFile(p, []byte(tc.body), 0o644)
			src := newSource(t, file.Config{Paths: []string{p}, Header: true, Delimiter: ";", Encoding: tc.encoding}, m)
			recs := readAllRecs(t, src, nil)
			if len(recs) != 2 {
				t.Fatalf("%d records", len(recs))
			}
			for i, r := range recs {
				if r.Err != nil || r.Values[s.Index("grid_cell_id")] != tc.want[i] {
					t.Errorf("%v: %v %v, want %s", r.Cursor, r.Values, r.Err, tc.want[i])
				}
			}
			if tc.detected != "" && src.Detected()[filepath.Base(p)] != tc.detected {
				t.Errorf("detected %v, want %s", src.Detected(), tc.detected)
			}
		})
	}
	if err := (file.Config{Paths: []string{"x.csv"}, Encoding: "ebcdic"}).Validate(); err == nil || !strings.Contains(err.Error(), "big5") {
		t.Errorf("ebcdic accepted or the error does not list the encodings: %v", err)
	}
}
