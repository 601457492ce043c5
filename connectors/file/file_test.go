package file_test

import (
	"bufio"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/encoding/simplifiedchinese"

	"citybrain/connectors"
	"citybrain/connectors/file"
	"citybrain/connectors/mapping"
	"citybrain/connectors/sources"
	"citybrain/schemas"
)

const realWeather = "../../testdata/real/weather/PRSA_Data_Guanyuan_20130301-20170228.csv"

// realLines returns the first n lines (header included) of the real sample.
func realLines(t *testing.T, n int) []string {
	t.Helper()
	f, err := os.Open(realWeather)
	if err != nil {
		t.Skipf("real sample not available: %v", err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for len(lines) < n && sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

func weatherMapper(t *testing.T) (*schemas.Schema, sources.Definition, *mapping.Mapper) {
	t.Helper()
	reg, err := schemas.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	s, err := reg.Get("weather")
	if err != nil {
		t.Fatal(err)
	}
	defs, err := sources.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	d, ok := defs["weather"]
	if !ok {
		t.Fatal("no built-in weather source")
	}
	m, err := mapping.New(s, d.Mapping)
	if err != nil {
		t.Fatal(err)
	}
	return s, d, m
}

type collector struct {
	recs    []connectors.Record
	batches int
}

func (c *collector) emit(_ context.Context, batch []connectors.Record) error {
	c.batches++
	c.recs = append(c.recs, batch...)
	return nil
}

func TestReadRealWeather(t *testing.T) {
	s, d, m := weatherMapper(t)
	lines := realLines(t, 52) // header + 51 data lines: 50 before the rejects, 1 after
	unclosed := `51,2013,3,3,2,"7,8,9,10,300,70,1.0,1020,-10,0,"N",1.0,"Guanyuan"`
	badPM := `52,2013,3,3,3,abc,8,9,10,300,70,1.0,1020,-10,0,"N",1.0,"Guanyuan"`
	content := strings.Join(lines[:51], "\n") + "\n" + unclosed + "\n" + badPM + "\n" + lines[51] + "\n"
	dir := t.TempDir()
	path := filepath.Join(dir, "guanyuan.csv")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := d.File
	cfg.Paths = []string{path}
	cfg.BatchRows = 7
	src, err := file.New(cfg, m)
	if err != nil {
		t.Fatal(err)
	}
	var progress []int64
	src.Progress = func(done, total int64) {
		if total != int64(len(content)) {
			t.Errorf("progress total %d, want %d", total, len(content))
		}
		progress = append(progress, done)
	}
	var c collector
	if err := src.Read(context.Background(), connectors.Positions{}, c.emit); err != nil {
		t.Fatal(err)
	}
	if len(c.recs) != 53 {
		t.Fatalf("%d records, want 53 (51 good + 2 rejects)", len(c.recs))
	}
	if c.batches < 53/7 {
		t.Errorf("%d batches with batch_rows 7", c.batches)
	}
	if len(progress) == 0 || progress[len(progress)-1] != int64(len(content)) {
		t.Errorf("progress %v, want to end at %d", progress, len(content))
	}
	var good int
	rejects := map[int64]connectors.Record{}
	for i, r := range c.recs {
		wantLine := int64(i + 2)
		if r.Cursor.Stream != "guanyuan.csv" || r.Cursor.Pos != wantLine {
			t.Errorf("record %d cursor %v, want guanyuan.csv#%d", i, r.Cursor, wantLine)
		}
		if r.Err != nil {
			rejects[r.Cursor.Pos] = r
			continue
		}
		good++
		if r.Values == nil {
			t.Fatalf("line %d: good record without values", wantLine)
		}
		if err := s.Validate(r.Values); err != nil {
			t.Errorf("line %d: %v", wantLine, err)
		}
	}
	if good != 51 || len(rejects) != 2 {
		t.Fatalf("good %d rejects %d", good, len(rejects))
	}
	q, ok := rejects[52]
	if !ok || !strings.Contains(q.Err.Error(), "line 52") || string(q.Raw) != unclosed || q.Values != nil {
		t.Errorf("unclosed quote reject: %+v (err %v)", q, q.Err)
	}
	pm, ok := rejects[53]
	if !ok || string(pm.Raw) != badPM || pm.Values != nil {
		t.Errorf("bad PM2.5 reject: %+v", pm)
	} else {
		for _, want := range []string{"line 53", "PM2.5", `"abc"`} {
			if !strings.Contains(pm.Err.Error(), want) {
				t.Errorf("reject error %q does not mention %s", pm.Err, want)
			}
		}
	}
	// The line after both rejects still ingests.
	if last := c.recs[len(c.recs)-1]; last.Err != nil || last.Cursor.Pos != 54 {
		t.Errorf("last record %+v", last)
	}

	first := c.recs[0].Values
	wantT := time.Date(2013, 3, 1, 0, 0, 0, 0, time.FixedZone("CST", 8*3600))
	obs, _ := first[s.Index("observed_at")].(time.Time)
	if !obs.Equal(wantT) || !obs.Equal(time.Date(2013, 2, 28, 16, 0, 0, 0, time.UTC)) {
		t.Errorf("observed_at = %v, want 2013-02-28T16:00Z", obs)
	}
	if first[s.Index("station")] != "Guanyuan" || first[s.Index("wind_direction")] != "NNW" ||
		first[s.Index("temperature_c")] != -0.7 || first[s.Index("pm25")] != 4.0 {
		t.Errorf("first record %v", first)
	}
	// File line 28 (data row No 27) has SO2 = NA.
	na := c.recs[28-2].Values
	if na == nil || na[s.Index("so2")] != nil || na[s.Index("no2")] != 26.0 {
		t.Errorf("line 28: so2 NA should be nil: %v", na)
	}

	t.Run("resume", func(t *testing.T) {
		var c2 collector
		if err := src.Read(context.Background(), connectors.Positions{"guanyuan.csv": {Stream: "guanyuan.csv", Pos: 30}}, c2.emit); err != nil {
			t.Fatal(err)
		}
		if len(c2.recs) != 54-30 {
			t.Errorf("%d records after line 30, want %d", len(c2.recs), 54-30)
		}
		for _, r := range c2.recs {
			if r.Cursor.Pos <= 30 {
				t.Errorf("resumed read emitted line %d", r.Cursor.Pos)
			}
		}
		if len(c2.recs) > 0 && c2.recs[0].Cursor.Pos != 31 {
			t.Errorf("first resumed line %d", c2.recs[0].Cursor.Pos)
		}
	})
	t.Run("other stream positions ignored", func(t *testing.T) {
		var c3 collector
		if err := src.Read(context.Background(), connectors.Positions{"other.csv": {Stream: "other.csv", Pos: 1000}}, c3.emit); err != nil {
			t.Fatal(err)
		}
		if len(c3.recs) != 53 {
			t.Errorf("%d records", len(c3.recs))
		}
	})
	t.Run("emit error returned as is", func(t *testing.T) {
		boom := errors.New("boom")
		err := src.Read(context.Background(), nil, func(context.Context, []connectors.Record) error { return boom })
		if err != boom {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := src.Read(ctx, nil, c.emit); !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v", err)
		}
	})
}

func TestReadBOMAndCRLF(t *testing.T) {
	_, d, m := weatherMapper(t)
	lines := realLines(t, 4)
	path := filepath.Join(t.TempDir(), "bom.csv")
	if err := os.WriteFile(path, []byte("\ufeff"+strings.Join(lines, "\r\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := d.File
	cfg.Paths = []string{filepath.Join(filepath.Dir(path), "*.csv")}
	src, err := file.New(cfg, m)
	if err != nil {
		t.Fatal(err)
	}
	var c collector
	if err := src.Read(context.Background(), nil, c.emit); err != nil {
		t.Fatal(err)
	}
	if len(c.recs) != 3 {
		t.Fatalf("%d records", len(c.recs))
	}
	for _, r := range c.recs {
		if r.Err != nil {
			t.Errorf("line %d: %v", r.Cursor.Pos, r.Err)
		}
	}
}

func TestReadGB18030(t *testing.T) {
	reg, err := schemas.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	s, _ := reg.Get("weather")
	m, err := mapping.New(s, mapping.Spec{
		NullValues: []string{"缺测"},
		Fields: map[string]mapping.FieldSpec{
			"station":     {Column: "站点"},
			"observed_at": {Column: "时间"},
			"pm25":        {Column: "细颗粒物"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	text := "站点|时间|细颗粒物\n官园|2013-03-01 00:00|4\n万寿西宫|2013-03-01 01:00|缺测\n"
	enc, err := simplifiedchinese.GB18030.NewEncoder().String(text)
	if err != nil {
		t.Fatal(err)
	}
	if enc == text {
		t.Fatal("encoding did nothing")
	}
	for _, encoding := range []string{"gb18030", "GBK"} {
		t.Run(encoding, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "gb.txt")
			if err := os.WriteFile(path, []byte(enc), 0o644); err != nil {
				t.Fatal(err)
			}
			src, err := file.New(file.Config{Paths: []string{path}, Header: true, Delimiter: "|", Encoding: encoding}, m)
			if err != nil {
				t.Fatal(err)
			}
			var c collector
			if err := src.Read(context.Background(), nil, c.emit); err != nil {
				t.Fatal(err)
			}
			if len(c.recs) != 2 {
				t.Fatalf("%d records", len(c.recs))
			}
			for i, want := range []string{"官园", "万寿西宫"} {
				r := c.recs[i]
				if r.Err != nil {
					t.Fatalf("line %d: %v", r.Cursor.Pos, r.Err)
				}
				if r.Values[0] != want {
					t.Errorf("station %q, want %q", r.Values[0], want)
				}
			}
			if c.recs[1].Values[s.Index("pm25")] != nil {
				t.Errorf("缺测 not null: %v", c.recs[1].Values)
			}
		})
	}
}

func TestReadHeaderless(t *testing.T) {
	reg, _ := schemas.Builtin()
	s, _ := reg.Get("weather")
	zero, one := 0, 1
	m, err := mapping.New(s, mapping.Spec{Fields: map[string]mapping.FieldSpec{
		"station":     {Index: &zero},
		"observed_at": {Index: &one, Layout: "2006-01-02T15"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "noheader.tsv")
	os.WriteFile(path, []byte("a\t2013-03-01T00\nb\t2013-03-01T01\tz\n"), 0o644)
	src, err := file.New(file.Config{Paths: []string{path}, Delimiter: "\t"}, m)
	if err != nil {
		t.Fatal(err)
	}
	var c collector
	if err := src.Read(context.Background(), nil, c.emit); err != nil {
		t.Fatal(err)
	}
	if len(c.recs) != 2 || c.recs[0].Err != nil || c.recs[0].Cursor.Pos != 1 || c.recs[1].Err != nil {
		t.Fatalf("records %+v", c.recs)
	}
}

// TestEscapedTabDelimiter: docs/config.md documents `\t` (backslash t, as
// written in YAML without double quotes) for tab, and New converts it.
func TestEscapedTabDelimiter(t *testing.T) {
	_, _, m := weatherMapper(t)
	cfg := file.Config{Paths: []string{"x"}, Delimiter: `\t`}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("regression: Config.Validate rejects the documented delimiter `\\t` before New converts it to a tab: %v", err)
	}
	if _, err := file.New(cfg, m); err != nil {
		t.Error(err)
	}
}

func TestReadErrors(t *testing.T) {
	_, d, m := weatherMapper(t)
	dir := t.TempDir()
	t.Run("missing file", func(t *testing.T) {
		cfg := d.File
		cfg.Paths = []string{filepath.Join(dir, "nope.csv")}
		src, err := file.New(cfg, m)
		if err != nil {
			t.Fatal(err)
		}
		err = src.Read(context.Background(), nil, (&collector{}).emit)
		if !errors.Is(err, connectors.ErrPermanent) || !strings.Contains(err.Error(), "nope.csv") {
			t.Errorf("err = %v, want ErrPermanent naming the file", err)
		}
	})
	t.Run("glob matching nothing is fine", func(t *testing.T) {
		cfg := d.File
		cfg.Paths = []string{filepath.Join(dir, "none-*.csv")}
		src, _ := file.New(cfg, m)
		if err := src.Read(context.Background(), nil, (&collector{}).emit); err != nil {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("header without mapped column", func(t *testing.T) {
		path := filepath.Join(dir, "wrong.csv")
		os.WriteFile(path, []byte("a,b\n1,2\n"), 0o644)
		cfg := d.File
		cfg.Paths = []string{path}
		src, _ := file.New(cfg, m)
		err := src.Read(context.Background(), nil, (&collector{}).emit)
		if !errors.Is(err, connectors.ErrPermanent) || !strings.Contains(err.Error(), "not in header") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("header with unclosed quote", func(t *testing.T) {
		path := filepath.Join(dir, "quote.csv")
		os.WriteFile(path, []byte("\"a,b\n1,2\n"), 0o644)
		cfg := d.File
		cfg.Paths = []string{path}
		src, _ := file.New(cfg, m)
		err := src.Read(context.Background(), nil, (&collector{}).emit)
		if !errors.Is(err, connectors.ErrPermanent) || !strings.Contains(err.Error(), "header") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  file.Config
		want string
	}{
		{"ok", file.Config{Paths: []string{"x"}}, ""},
		{"ok tab gbk", file.Config{Paths: []string{"x"}, Delimiter: "\t", Encoding: "gbk"}, ""},
		{"no paths", file.Config{}, "file.paths"},
		{"long delimiter", file.Config{Paths: []string{"x"}, Delimiter: ",,"}, "file.delimiter"},
		{"bad encoding", file.Config{Paths: []string{"x"}, Encoding: "shift-jis"}, "shift-jis"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == "" {
				if err != nil {
					t.Errorf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate = %v, want mention of %q", err, tt.want)
			}
		})
	}
}

func TestFilesSortedAndDeduplicated(t *testing.T) {
	_, _, m := weatherMapper(t)
	dir := t.TempDir()
	for _, n := range []string{"b.csv", "a.csv", "c.txt"} {
		os.WriteFile(filepath.Join(dir, n), nil, 0o644)
	}
	src, err := file.New(file.Config{Paths: []string{filepath.Join(dir, "*.csv"), filepath.Join(dir, "a.csv")}}, m)
	if err != nil {
		t.Fatal(err)
	}
	files, err := src.Files()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || filepath.Base(files[0]) != "a.csv" || filepath.Base(files[1]) != "b.csv" {
		t.Errorf("files %v", files)
	}
	bad, _ := file.New(file.Config{Paths: []string{"[bad"}}, m)
	if _, err := bad.Files(); !errors.Is(err, connectors.ErrPermanent) {
		t.Errorf("bad pattern: %v", err)
	}
}

// TestWrongEncodingDeadLettered: a GB18030 file declared utf-8 (and bytes
// invalid in GBK declared gbk) never lands as U+FFFD: each row with such
// text is rejected with the column and what to set, the others land.
func TestWrongEncodingDeadLettered(t *testing.T) {
	_, _, m := weatherMapper(t)
	gb, err := simplifiedchinese.GB18030.NewEncoder().String("官园")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ encoding, bad, want string }{
		{"utf-8", gb, "not valid utf-8"},
		{"gbk", "\x81\x20", "not valid gbk"}, // a lead byte without its trail byte
	} {
		t.Run(tc.encoding, func(t *testing.T) {
			lines := realLines(t, 2)
			header, first := lines[0], lines[1]
			cells := strings.Split(first, ",")
			cells[len(cells)-1] = tc.bad // station is the last column of the real file
			path := filepath.Join(t.TempDir(), "w.csv")
			os.WriteFile(path, []byte(header+"\n"+first+"\n"+strings.Join(cells, ",")+"\n"), 0o644)
			src, err := file.New(file.Config{Paths: []string{path}, Header: true, Delimiter: ",", Encoding: tc.encoding}, m)
			if err != nil {
				t.Fatal(err)
			}
			var c collector
			if err := src.Read(context.Background(), nil, c.emit); err != nil {
				t.Fatal(err)
			}
			if len(c.recs) != 2 || c.recs[0].Err != nil {
				t.Fatalf("records %+v", c.recs)
			}
			bad := c.recs[1]
			if !errors.Is(bad.Err, file.ErrEncoding) || !strings.Contains(bad.Err.Error(), tc.want) || !strings.Contains(bad.Err.Error(), "file.encoding") || bad.Values != nil || len(bad.Raw) == 0 {
				t.Errorf("line 3: %v (values %v)", bad.Err, bad.Values)
			}
		})
	}
}
