// Package file is the file transport: delimited text files (any delimiter
// and quoting, with or without a header, UTF-8 with or without BOM, or
// GB18030/GBK, any line ending), read as they are and never modified.
//
// Each file is a stream named by its base name; the cursor is the line on
// which a record starts, so a restarted source skips what it already sent.
package file

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"

	"golang.org/x/text/encoding/simplifiedchinese"

	"citybrain/connectors"
	"citybrain/connectors/mapping"
)

// Config is the file transport's part of a source definition.
type Config struct {
	// Paths are files or glob patterns, read in sorted order.
	Paths []string `yaml:"paths"`
	// Header says the first line names the columns.
	Header bool `yaml:"header"`
	// Delimiter is one character; default ",".
	Delimiter string `yaml:"delimiter"`
	// Encoding is utf-8 (default), gb18030 or gbk.
	Encoding string `yaml:"encoding"`
	// BatchRows is how many records are emitted at once; default 5000.
	BatchRows int `yaml:"batch_rows"`
}

// Validate checks the config.
func (c Config) Validate() error {
	if len(c.Paths) == 0 {
		return errors.New("file.paths: at least one file or glob is required")
	}
	if c.Delimiter != "" && c.Delimiter != `\t` && len(c.Delimiter) != 1 {
		return fmt.Errorf("file.delimiter %q: want one single-byte character such as , | ; or \\t", c.Delimiter)
	}
	switch strings.ToLower(c.Encoding) {
	case "", "utf-8", "utf8", "gb18030", "gbk":
	default:
		return fmt.Errorf("file.encoding %q: want utf-8, gb18030 or gbk", c.Encoding)
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
	// Skipped counts rows the mapping's filter left out.
	Skipped atomic.Int64
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
	return &Source{cfg: cfg, mapper: m}, nil
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

func (s *Source) readFile(ctx context.Context, path string, from connectors.Positions, emit connectors.Emit, progress func(int64)) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", connectors.ErrPermanent, err)
	}
	defer f.Close()
	counter := &countingReader{r: f}
	var r io.Reader = counter
	switch strings.ToLower(s.cfg.Encoding) {
	case "gb18030":
		r = simplifiedchinese.GB18030.NewDecoder().Reader(r)
	case "gbk":
		r = simplifiedchinese.GBK.NewDecoder().Reader(r)
	}
	stream := filepath.Base(path)
	resume, seen := from[stream]
	after := resume.Pos
	rr := newRecordReader(r)
	delim := s.cfg.Delimiter[0]
	var bound *mapping.Bound
	if !s.cfg.Header {
		if bound, err = s.mapper.Bind(nil); err != nil {
			return 0, fmt.Errorf("%w: %s: %v", connectors.ErrPermanent, path, err)
		}
	}
	batch := make([]connectors.Record, 0, s.cfg.BatchRows)
	var fields []string
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := emit(ctx, batch); err != nil {
			return err
		}
		batch = batch[:0]
		progress(counter.n)
		return nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return counter.n, err
		}
		raw, line, unbalanced, err := rr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return counter.n, fmt.Errorf("read %s line %d: %w", path, rr.line, err)
		}
		if line == 1 {
			raw = bytes.TrimPrefix(raw, []byte("\ufeff"))
		}
		if bound == nil { // header line
			if unbalanced {
				return counter.n, fmt.Errorf("%w: %s: header has an unclosed quote", connectors.ErrPermanent, path)
			}
			header, err := splitFields(raw, delim, nil)
			if err != nil {
				return counter.n, fmt.Errorf("%w: %s header: %v", connectors.ErrPermanent, path, err)
			}
			if bound, err = s.mapper.Bind(header); err != nil {
				return counter.n, fmt.Errorf("%w: %s: %v", connectors.ErrPermanent, path, err)
			}
			continue
		}
		if seen && line <= after {
			continue
		}
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		rec := connectors.Record{Cursor: connectors.Cursor{Stream: stream, Pos: line}}
		if unbalanced {
			rec.Err = fmt.Errorf("line %d: %w", line, errQuote)
		} else if fields, err = splitFields(raw, delim, fields); err != nil {
			rec.Err = fmt.Errorf("line %d: %w", line, err)
		} else if rec.Values, err = bound.Map(fields); err != nil {
			if errors.Is(err, mapping.ErrSkipped) {
				// Filtered out by the mapping: neither a record nor a reject.
				s.Skipped.Add(1)
				continue
			}
			rec.Err = fmt.Errorf("line %d: %w", line, err)
		}
		if rec.Err != nil {
			rec.Raw = append([]byte(nil), raw...)
			rec.Values = nil
		}
		batch = append(batch, rec)
		if len(batch) >= s.cfg.BatchRows {
			if err := flush(); err != nil {
				return counter.n, err
			}
		}
	}
	return counter.n, flush()
}
