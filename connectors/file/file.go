// Package file is the file transport: files read as they are and never
// modified, in one of four formats (file.format):
//
//   - csv: delimited text (any delimiter and quoting, with or without a
//     header, any line ending); the cursor is the line on which a record
//     starts.
//   - jsonl: one JSON object per line, nested objects flattened into dotted
//     column names ("location.lat"), arrays kept as their JSON text; the
//     cursor is the line number.
//   - xlsx: one sheet of an Excel workbook, read row by row with each cell
//     as it is shown (dates formatted); the cursor is the sheet's row number.
//   - parquet: rows of a Parquet file with its column names (nested columns
//     dotted), values as text (timestamps RFC 3339); the cursor is the row
//     number from 1.
//
// Text formats are decoded from the configured encoding (utf-8 with or
// without BOM, gb18030/gbk, big5, utf-16 with BOM, latin-1/windows-1252,
// or auto-detected).
//
// Each file is a stream named by its base name, so a restarted source skips
// what it already sent. A record longer than max_record_bytes is a reject.
package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"citybrain/connectors"
	"citybrain/connectors/mapping"
)

// Config is the file transport's part of a source definition.
type Config struct {
	// Paths are files or glob patterns, read in sorted order.
	Paths []string `yaml:"paths"`
	// Format is csv (default), jsonl, xlsx or parquet.
	Format string `yaml:"format"`
	// Header says the first line (csv) or row (xlsx) names the columns.
	// jsonl and parquet always name their columns.
	Header bool `yaml:"header"`
	// Delimiter is one character; default "," (csv only).
	Delimiter string `yaml:"delimiter"`
	// Encoding is utf-8 (default), gb18030, gbk, big5, utf-16 (with a
	// BOM), utf-16le, utf-16be, latin-1, windows-1252 or auto (csv and jsonl).
	Encoding string `yaml:"encoding"`
	// Sheet is the xlsx sheet to read; default the first one.
	Sheet string `yaml:"sheet"`
	// MaxRecordBytes is the longest record accepted; a longer one is a
	// reject. Default 1 MiB.
	MaxRecordBytes int `yaml:"max_record_bytes"`
	// BatchRows is how many records are emitted at once; default 5000.
	BatchRows int `yaml:"batch_rows"`
}

// Formats.
const (
	FormatCSV     = "csv"
	FormatJSONL   = "jsonl"
	FormatXLSX    = "xlsx"
	FormatParquet = "parquet"
)

// DefaultMaxRecordBytes is max_record_bytes when unset.
const DefaultMaxRecordBytes = 1 << 20

func normFormat(f string) string {
	switch f = strings.ToLower(strings.TrimSpace(f)); f {
	case "", "csv", "tsv", "txt":
		return FormatCSV
	case "jsonl", "ndjson", "json-lines", "jsonlines":
		return FormatJSONL
	}
	return f
}

// Validate checks the config.
func (c Config) Validate() error {
	if len(c.Paths) == 0 {
		return errors.New("file.paths: at least one file or glob is required")
	}
	if c.Delimiter != "" && c.Delimiter != `\t` && len(c.Delimiter) != 1 {
		return fmt.Errorf("file.delimiter %q: want one single-byte character such as , | ; or \\t", c.Delimiter)
	}
	if enc := normEncoding(c.Encoding); enc != "auto" && !slices.Contains(Encodings, enc) {
		return fmt.Errorf("file.encoding %q: want auto or one of %s / 不支持的编码", c.Encoding, strings.Join(Encodings, ", "))
	}
	switch normFormat(c.Format) {
	case FormatCSV, FormatJSONL, FormatXLSX, FormatParquet:
	default:
		return fmt.Errorf("file.format %q: want csv, jsonl, xlsx or parquet", c.Format)
	}
	if c.Sheet != "" && normFormat(c.Format) != FormatXLSX {
		return fmt.Errorf("file.sheet %q is for format xlsx only", c.Sheet)
	}
	if c.MaxRecordBytes < 0 {
		return fmt.Errorf("file.max_record_bytes %d: want a positive size in bytes (default %d)", c.MaxRecordBytes, DefaultMaxRecordBytes)
	}
	return nil
}

// Source reads files through a mapping.
type Source struct {
	cfg    Config
	mapper *mapping.Mapper
	// Progress, if set, is called after each batch with the bytes read and
	// the total size of the files.
	Progress func(done, total int64)
	// OnDetect, if set, is called with a file and the encoding detected for
	// it when the encoding is auto (at each read, check and reparse).
	OnDetect func(path, encoding string)
	// Skipped counts rows the mapping's filter left out.
	Skipped atomic.Int64
	// Emitted counts records (and rejects) handed to emit.
	Emitted atomic.Int64

	mu       sync.Mutex
	detected map[string]string  // base name → encoding detected (auto)
	bounds   *mapping.BindCache // jsonl/parquet header signature → binding
}

var _ connectors.Source = (*Source)(nil)

// New returns a file source.
func New(cfg Config, m *mapping.Mapper) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Delimiter == "" {
		cfg.Delimiter = ","
	}
	if cfg.Delimiter == `\t` {
		cfg.Delimiter = "\t"
	}
	if cfg.BatchRows <= 0 {
		cfg.BatchRows = 5000
	}
	if cfg.MaxRecordBytes <= 0 {
		cfg.MaxRecordBytes = DefaultMaxRecordBytes
	}
	cfg.Format = normFormat(cfg.Format)
	return &Source{cfg: cfg, mapper: m, detected: map[string]string{}, bounds: mapping.NewBindCache(m)}, nil
}

// Format is the format the source reads (csv, jsonl, xlsx or parquet).
func (s *Source) Format() string { return s.cfg.Format }

// Detected returns the encoding found for each file (by base name) the last
// time it was opened with encoding auto.
func (s *Source) Detected() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]string, len(s.detected))
	for k, v := range s.detected {
		out[k] = v
	}
	return out
}

// Files lists the files the source would read now.
func (s *Source) Files() ([]string, error) {
	var files []string
	seen := map[string]bool{}
	for _, p := range s.cfg.Paths {
		matches, err := filepath.Glob(p)
		if err != nil {
			return nil, fmt.Errorf("%w: bad pattern %q: %v", connectors.ErrPermanent, p, err)
		}
		if len(matches) == 0 && !strings.ContainsAny(p, "*?[") {
			return nil, fmt.Errorf("%w: %s does not exist (check file.paths; relative paths are from the working directory)", connectors.ErrPermanent, p)
		}
		for _, m := range matches {
			if !seen[m] {
				seen[m] = true
				files = append(files, m)
			}
		}
	}
	sort.Strings(files)
	return files, nil
}

// Read implements connectors.Source.
func (s *Source) Read(ctx context.Context, from connectors.Positions, emit connectors.Emit) error {
	files, err := s.Files()
	if err != nil {
		return err
	}
	var total, done int64
	for _, f := range files {
		if st, err := os.Stat(f); err == nil {
			total += st.Size()
		}
	}
	for _, f := range files {
		n, err := s.readFile(ctx, f, from, emit, func(n int64) {
			if s.Progress != nil {
				s.Progress(done+n, total)
			}
		})
		done += n
		if err != nil {
			return err
		}
	}
	return nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// row is one row of a file, before mapping.
type row struct {
	pos    int64
	header []string // this row's own column names (jsonl); nil: the file's
	cells  []string
	raw    []byte // the row as read (csv, jsonl); nil: rows.encode(cells)
	err    error  // rejected before mapping
}

// rowReader yields the rows of one file after a position.
type rowReader interface {
	// next returns the next row, io.EOF at the end; other errors stop the
	// file (a read error, a corrupt workbook).
	next() (row, error)
	// consumed is how many bytes of the file are behind, for progress.
	consumed() int64
	// encode renders a row's cells as the raw bytes of a reject, in the
	// form Reparse takes back.
	encode(cells []string) []byte
	Close() error
}

// opened is a file ready to read: its rows, and its column names when the
// whole file shares them.
type opened struct {
	rows rowReader
	// fixed: bind header (nil for a headerless file) once for all rows;
	// otherwise each row carries its own (or the file has no rows).
	fixed  bool
	header []string
}

// open opens a file in the configured format, positioned after row after.
func (s *Source) open(path string, after int64) (opened, error) {
	switch s.cfg.Format {
	case FormatJSONL:
		return s.openJSONL(path, after)
	case FormatXLSX:
		return s.openXLSX(path, after)
	case FormatParquet:
		return s.openParquet(path, after)
	}
	return s.openCSV(path, after)
}

// openText opens a text file and decodes it.
func (s *Source) openText(path string) (*os.File, *countingReader, io.Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %v", connectors.ErrPermanent, err)
	}
	counter := &countingReader{r: f}
	r, enc := decode(counter, s.cfg.Encoding)
	if normEncoding(s.cfg.Encoding) == "auto" {
		s.noteDetected(path, enc)
	}
	return f, counter, r, nil
}

// encodingOf is the encoding a file is read in: file.encoding, or what
// auto detected for it.
func (s *Source) encodingOf(path string) string {
	if enc := normEncoding(s.cfg.Encoding); enc != "auto" {
		return enc
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if enc := s.detected[filepath.Base(path)]; enc != "" {
		return enc
	}
	return "auto"
}

// ErrEncoding rejects a row with text that is not valid in the file's
// encoding: invalid bytes are never stored as U+FFFD.
var ErrEncoding = errors.New("文本不符合文件编码 text not valid in the file's encoding")

// badTextCell is the 1-based column of the first cell holding bytes that
// are not UTF-8, or U+FFFD (what a decoder puts for bytes invalid in its
// encoding); 0 when every cell is clean.
func badTextCell(cells []string) int {
	for i, c := range cells {
		if !utf8.ValidString(c) || strings.ContainsRune(c, utf8.RuneError) {
			return i + 1
		}
	}
	return 0
}

func badText(col int, enc string) error {
	return fmt.Errorf("%w: 第 %d 列含有非 %s 编码的字节，请把 file.encoding 设为文件的实际编码（gb18030、big5、utf-16、latin-1 …）或 auto / column %d has bytes that are not valid %s: set file.encoding to the file's encoding (gb18030, big5, utf-16, latin-1 …) or auto",
		ErrEncoding, col, enc, col, enc)
}

func (s *Source) noteDetected(path, enc string) {
	s.mu.Lock()
	s.detected[filepath.Base(path)] = enc
	s.mu.Unlock()
	if s.OnDetect != nil {
		s.OnDetect(path, enc)
	}
}

func (s *Source) readFile(ctx context.Context, path string, from connectors.Positions, emit connectors.Emit, progress func(int64)) (int64, error) {
	stream := filepath.Base(path)
	after := from[stream].Pos
	if size, ok := finishedSize(from[stream].Token); ok {
		if st, err := os.Stat(path); err == nil && st.Size() == size {
			// Read to its end before, unchanged since: not even opened.
			return size, nil
		}
	}
	// A wide file's records have positions of their own: row × stride +
	// the column's place (mapping.UnpivotStride), so a row half committed
	// when the process died is completed, not skipped or doubled.
	stride := int64(1)
	openAfter := after
	if s.mapper.Wide() {
		stride = mapping.UnpivotStride
		openAfter = after/stride - 1
	}
	op, err := s.open(path, openAfter)
	if err != nil {
		return 0, err
	}
	rows := op.rows
	defer rows.Close()
	var bound *mapping.Bound
	if op.fixed {
		if bound, err = s.mapper.Bind(op.header); err != nil {
			return rows.consumed(), fmt.Errorf("%w: %s: %v", connectors.ErrPermanent, path, err)
		}
	}
	unit := "line"
	if s.cfg.Format == FormatXLSX || s.cfg.Format == FormatParquet {
		unit = "row"
	}
	max := s.cfg.MaxRecordBytes
	batch := make([]connectors.Record, 0, min(s.cfg.BatchRows, 1<<16))
	// The newest row's records are held back until the next row is read,
	// so that the file's last record can carry the file's size in its
	// token: a later Read then skips the finished file unopened.
	var held []connectors.Record
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := emit(ctx, batch); err != nil {
			return err
		}
		s.Emitted.Add(int64(len(batch)))
		batch = batch[:0]
		progress(rows.consumed())
		return nil
	}
	var recs []connectors.Record
	for {
		if err := ctx.Err(); err != nil {
			return rows.consumed(), err
		}
		r, err := rows.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if errors.Is(err, connectors.ErrPermanent) {
				return rows.consumed(), err
			}
			return rows.consumed(), fmt.Errorf("read %s %s %d: %w", path, unit, r.pos, err)
		}
		if (r.pos+1)*stride-1 <= after {
			continue
		}
		if r.err == nil && r.raw == nil {
			if size := cellsSize(r.cells); size > max {
				r.err = tooLong(int64(size), max)
				r.raw = rows.encode(r.cells)
				r.raw = r.raw[:min(len(r.raw), max)]
			}
		}
		if r.err == nil {
			if col := badTextCell(r.cells); col > 0 {
				r.err = badText(col, s.encodingOf(path))
			}
		}
		recs = recs[:0]
		reject := func(sub int, column string, err error) {
			rec := connectors.Record{Cursor: connectors.Cursor{Stream: stream, Pos: r.pos*stride + int64(sub)}}
			if column != "" {
				rec.Err = fmt.Errorf("%s %d, %s: %w", unit, r.pos, column, err)
			} else {
				rec.Err = fmt.Errorf("%s %d: %w", unit, r.pos, err)
			}
			if r.raw == nil {
				r.raw = rows.encode(r.cells)
			}
			rec.Raw = append([]byte(nil), r.raw...)
			recs = append(recs, rec)
		}
		b := bound
		if r.err == nil {
			if r.header != nil {
				b, err = s.bounds.Bind(r.header)
			} else if b == nil {
				b, err = s.bounds.Bind(nil)
			}
			if err != nil {
				r.err = err
			}
		}
		if r.err != nil {
			// The whole row is rejected: once per record it would have given.
			n := 1
			if b != nil {
				n = b.Records()
			}
			for k := range n {
				if r.pos*stride+int64(k) > after {
					reject(k, "", r.err)
				}
			}
		} else {
			for _, m := range b.MapAll(r.cells) {
				if r.pos*stride+int64(m.Sub) <= after {
					continue
				}
				if errors.Is(m.Err, mapping.ErrSkipped) {
					// Filtered out by the mapping: neither a record nor a reject.
					s.Skipped.Add(1)
					continue
				}
				if m.Err != nil {
					reject(m.Sub, m.Column, m.Err)
					continue
				}
				recs = append(recs, connectors.Record{Cursor: connectors.Cursor{Stream: stream, Pos: r.pos*stride + int64(m.Sub)}, Values: m.Rec})
			}
		}
		if len(recs) == 0 {
			continue
		}
		if held != nil {
			batch = append(batch, held...)
			if len(batch) >= s.cfg.BatchRows {
				if err := flush(); err != nil {
					return rows.consumed(), err
				}
			}
		}
		held = append(held[:0:0], recs...)
	}
	if len(held) > 0 {
		size := rows.consumed()
		if s.cfg.Format == FormatXLSX || s.cfg.Format == FormatParquet {
			if st, err := os.Stat(path); err == nil {
				size = st.Size()
			}
		}
		held[len(held)-1].Cursor.Token = finishedToken(size)
		batch = append(batch, held...)
	}
	return rows.consumed(), flush()
}

// finishedToken marks a file's last record with the bytes the file had
// when it was read to its end.
func finishedToken(size int64) string { return "size=" + strconv.FormatInt(size, 10) }

// finishedSize reads finishedToken.
func finishedSize(token string) (int64, bool) {
	v, ok := strings.CutPrefix(token, "size=")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}

// cellsSize is the size of a row of cells as a record: the cells and a
// separator between each two.
func cellsSize(cells []string) int {
	n := max(0, len(cells)-1)
	for _, c := range cells {
		n += len(c)
	}
	return n
}

// ErrTooLong marks a record longer than max_record_bytes.
var ErrTooLong = errors.New("record too long / 记录过长")

func tooLong(size int64, limit int) error {
	return fmt.Errorf("%w: %d bytes exceed file.max_record_bytes %d (raw truncated to the limit)", ErrTooLong, size, limit)
}
