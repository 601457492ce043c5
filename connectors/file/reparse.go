package file

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/text/encoding/simplifiedchinese"

	"citybrain/connectors"
	"citybrain/connectors/mapping"
	"citybrain/schemas"
)

var (
	_ connectors.Reparser = (*Source)(nil)
	_ connectors.Checker  = (*Source)(nil)
)

// Check reports whether the configured files can be read, and that their
// header matches the mapping.
func (s *Source) Check(ctx context.Context) error {
	files, err := s.Files()
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no file matches %s yet (that is fine for a drop directory that is still empty)", strings.Join(s.cfg.Paths, ", "))
	}
	for _, f := range files {
		if _, err := s.bind(f); err != nil {
			return err
		}
	}
	return nil
}

// bind reads a file's header and binds the mapping to it.
func (s *Source) bind(path string) (*mapping.Bound, error) {
	if !s.cfg.Header {
		return s.mapper.Bind(nil)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", connectors.ErrPermanent, err)
	}
	defer f.Close()
	var r io.Reader = f
	switch strings.ToLower(s.cfg.Encoding) {
	case "gb18030":
		r = simplifiedchinese.GB18030.NewDecoder().Reader(r)
	case "gbk":
		r = simplifiedchinese.GBK.NewDecoder().Reader(r)
	}
	raw, _, _, err := newRecordReader(r).next()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: no header line: %v", connectors.ErrPermanent, path, err)
	}
	header, err := splitFields(bytes.TrimPrefix(raw, []byte("\ufeff")), s.cfg.Delimiter[0], nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %s header: %v", connectors.ErrPermanent, path, err)
	}
	b, err := s.mapper.Bind(header)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", connectors.ErrPermanent, path, err)
	}
	return b, nil
}

// Reparse maps a dead letter's raw line again, with the header of the file
// it came from (stream = the file's base name).
func (s *Source) Reparse(raw []byte, stream string) (schemas.Record, error) {
	files, err := s.Files()
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if filepath.Base(f) != stream {
			continue
		}
		b, err := s.bind(f)
		if err != nil {
			return nil, err
		}
		fields, err := splitFields(raw, s.cfg.Delimiter[0], nil)
		if err != nil {
			return nil, err
		}
		return b.Map(fields)
	}
	return nil, fmt.Errorf("file %s is no longer in %s: cannot re-read its header", stream, strings.Join(s.cfg.Paths, ", "))
}
