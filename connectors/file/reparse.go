package file

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"citybrain/connectors"
	"citybrain/connectors/mapping"
	"citybrain/schemas"
)

var (
	_ connectors.Reparser = (*Source)(nil)
	_ connectors.Checker  = (*Source)(nil)
)

// Check reports whether the configured files can be read, and that their
// header (csv, xlsx), column names (parquet) or first object's keys (jsonl)
// fit the mapping. See Describe for what it found.
func (s *Source) Check(ctx context.Context) error {
	_, err := s.Describe(ctx)
	return err
}

// Describe checks the files like Check and says what it found: the format
// and, for each file, the encoding detected when the encoding is auto.
func (s *Source) Describe(ctx context.Context) (string, error) {
	files, err := s.Files()
	if err != nil {
		return "", err
	}
	if len(files) == 0 {
		return "", fmt.Errorf("no file matches %s yet (that is fine for a drop directory that is still empty)", strings.Join(s.cfg.Paths, ", "))
	}
	var notes []string
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		if _, err := s.bind(f); err != nil {
			return "", err
		}
		if normEncoding(s.cfg.Encoding) == "auto" && (s.cfg.Format == FormatCSV || s.cfg.Format == FormatJSONL) {
			s.mu.Lock()
			enc := s.detected[filepath.Base(f)]
			s.mu.Unlock()
			notes = append(notes, fmt.Sprintf("%s: encoding %s (detected)", filepath.Base(f), enc))
		}
	}
	desc := fmt.Sprintf("%s, %d file(s)", s.cfg.Format, len(files))
	if len(notes) > 0 {
		desc += "; " + strings.Join(notes, "; ")
	}
	return desc, nil
}

// jsonlProbe is how many lines Check reads to find the first JSON object.
const jsonlProbe = 100

// bind opens a file, reads its header and binds the mapping to it. For
// jsonl it binds the keys of the first JSON object in the file (nil
// when none is found within the first lines).
func (s *Source) bind(path string) (*mapping.Bound, error) {
	op, err := s.open(path, 0)
	if err != nil {
		return nil, err
	}
	defer op.rows.Close()
	if op.fixed {
		b, err := s.mapper.Bind(op.header)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", connectors.ErrPermanent, path, err)
		}
		return b, nil
	}
	if s.cfg.Format != FormatJSONL {
		return nil, nil // an empty file
	}
	for i := 0; i < jsonlProbe; i++ {
		r, err := op.rows.next()
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		if r.err != nil || r.header == nil {
			continue
		}
		b, err := s.bounds.Bind(r.header)
		if err != nil {
			return nil, fmt.Errorf("%w: %s line %d: %v", connectors.ErrPermanent, path, r.pos, err)
		}
		return b, nil
	}
	return nil, nil
}

// Reparse maps a dead letter's raw bytes again. csv and xlsx rejects (a
// line, or a sheet row as one CSV record) are split and mapped with the
// header of the file they came from (stream = the file's base name); jsonl
// and parquet rejects (a JSON object) carry their own column names.
func (s *Source) Reparse(raw []byte, at connectors.Cursor) (schemas.Record, error) {
	stream := at.Stream
	// A wide file's record k of a row has position row × stride + k.
	k := 0
	if s.mapper.Wide() {
		k = int(at.Pos % mapping.UnpivotStride)
	}
	if err := s.tooLongRaw(raw); err != nil {
		return nil, err
	}
	switch s.cfg.Format {
	case FormatJSONL, FormatParquet:
		header, row, err := flattenJSON(raw, nil, nil)
		if err != nil {
			return nil, err
		}
		if header == nil {
			header = []string{}
		}
		b, err := s.bounds.Bind(header)
		if err != nil {
			return nil, err
		}
		return b.MapOne(row, k)
	}
	files, err := s.Files()
	if err != nil {
		return nil, err
	}
	delim := s.cfg.Delimiter[0]
	if s.cfg.Format == FormatXLSX {
		delim = ','
	}
	for _, f := range files {
		if filepath.Base(f) != stream {
			continue
		}
		b, err := s.bind(f)
		if err != nil {
			return nil, err
		}
		if b == nil {
			return nil, fmt.Errorf("file %s has no header row any more: cannot map its rows", stream)
		}
		fields, err := splitFields(raw, delim, nil)
		if err != nil {
			return nil, err
		}
		return b.MapOne(fields, k)
	}
	return nil, fmt.Errorf("file %s is no longer in %s: cannot re-read its header", stream, strings.Join(s.cfg.Paths, ", "))
}

// tooLongRaw refuses a raw record longer than max_record_bytes (a dead
// letter of a too-long record holds only its first max_record_bytes bytes,
// so it cannot be mapped anyway).
func (s *Source) tooLongRaw(raw []byte) error {
	if len(raw) > s.cfg.MaxRecordBytes {
		return tooLong(int64(len(raw)), s.cfg.MaxRecordBytes)
	}
	return nil
}
