package connectors

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"citybrain/schemas"
)

// SampleReport is what reading a source from the start, without producing,
// found: how many rows would land and how many would be dead-lettered, by
// kind of problem (encoding, enum, time format, column count, …).
type SampleReport struct {
	Rows, Good int
	// Problems are the kinds of problem, most frequent first.
	Problems []Problem
	// Complete: the whole source was read (not cut at the row limit).
	Complete bool
}

// Problem is one kind of reject in a sample.
type Problem struct {
	Kind    string
	Count   int
	Example string // the first row's cursor
}

// Rejected is the number of rows that would be dead-lettered.
func (r SampleReport) Rejected() int { return r.Rows - r.Good }

var (
	linePrefix = regexp.MustCompile(`^line \d+: `)
	quoted     = regexp.MustCompile(`"[^"]*"`)
)

// problemKind groups a reject reason with others of its kind: without its
// line number, and with the values it quotes (after the first quoted name,
// the column) elided.
func problemKind(reason string) string {
	reason = linePrefix.ReplaceAllString(reason, "")
	n := 0
	return quoted.ReplaceAllStringFunc(reason, func(q string) string {
		n++
		if n == 1 && strings.Contains(reason, "column "+q) {
			return q
		}
		return `"…"`
	})
}

var errSampled = errors.New("sampled enough rows")

// Sample reads src from the start (no checkpoint is read or written, nothing
// is produced) and maps and validates up to maxRows rows (0: all), the way
// ingestion would.
func Sample(ctx context.Context, src Source, s *schemas.Schema, maxRows int) (SampleReport, error) {
	var rep SampleReport
	byKind := map[string]*Problem{}
	err := src.Read(ctx, Positions{}, func(ctx context.Context, batch []Record) error {
		for _, r := range batch {
			if maxRows > 0 && rep.Rows >= maxRows {
				return errSampled
			}
			rep.Rows++
			why := r.Err
			if why == nil {
				why = s.Validate(r.Values)
			}
			if why == nil {
				rep.Good++
				continue
			}
			k := problemKind(why.Error())
			p := byKind[k]
			if p == nil {
				p = &Problem{Kind: k, Example: r.Cursor.String()}
				byKind[k] = p
			}
			p.Count++
		}
		return nil
	})
	switch {
	case errors.Is(err, errSampled):
	case err != nil:
		return rep, fmt.Errorf("sample: %w", err)
	default:
		rep.Complete = true
	}
	for _, p := range byKind {
		rep.Problems = append(rep.Problems, *p)
	}
	sort.Slice(rep.Problems, func(i, j int) bool {
		a, b := rep.Problems[i], rep.Problems[j]
		return a.Count > b.Count || a.Count == b.Count && a.Kind < b.Kind
	})
	return rep, nil
}
