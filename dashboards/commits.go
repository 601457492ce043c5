package dashboards

import (
	"context"
	"fmt"
	"time"

	"citybrain/internal/auth"
)

// Committed tells the server a table was committed: cached answers that
// read it are recomputed (served stale meanwhile), open pages are told to
// refresh once they are, and new rows of
// marts.warnings are pushed to them as "warning" events. Call it from the
// commit bus (it returns quickly; the push runs in the background).
func (s *Server) Committed(table string) {
	settled := s.cache.invalidate(table)
	go func() {
		// Pages refresh once the answers that read table are recomputed, so
		// their requests find the new ones (never waiting longer than
		// refreshWait for a slow one).
		select {
		case <-settled:
		case <-time.After(refreshWait):
		}
		s.live.publishView("refresh", func(sc auth.Scope) (any, bool) {
			return map[string]any{"tables": []string{table}}, sc.Sees(table)
		})
	}()
	if table == WarningsTable {
		go s.pushWarnings(context.Background())
	}
}

// refreshWait is the longest a page's refresh event waits for the answers
// a commit made stale.
const refreshWait = 30 * time.Second

// WarningsTable is the warning engine's table of transitions.
const WarningsTable = "marts.warnings"

// pushWarnings sends the warning transitions newer than the last pushed,
// in sequence order and in pages of pushPage until none is left: a burst
// (a catch-up makes thousands) is pushed whole, not its first page only.
// (By seq, not transition_at: a batch's transitions share their stamp to the
// microsecond, and a page cut inside such a group lost the rest of it.)
func (s *Server) pushWarnings(ctx context.Context) {
	s.pushMu.Lock()
	defer s.pushMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for unit := int64(0); unit < s.stride(); unit++ {
		for {
			n, err := s.pushPage(ctx, unit)
			if err != nil {
				s.d.Log.Warn("dashboard warnings push", "err", err)
				return
			}
			if n < pushPage {
				break
			}
		}
	}
}

// stride is Deps.SeqStride, at least 1.
func (s *Server) stride() int64 { return max(s.d.SeqStride, 1) }

// pushPage is how many transitions one query of pushWarnings reads.
const pushPage = 1000

func (s *Server) pushPage(ctx context.Context, unit int64) (int, error) {
	if s.lastSeq == nil {
		s.lastSeq = map[int64]int64{}
	}
	rows, err := s.d.Engine.Query(ctx, fmt.Sprintf(`SELECT * FROM marts.warnings WHERE seq > ? AND seq %% %d = ? ORDER BY seq LIMIT %d`, s.stride(), pushPage), s.lastSeq[unit], unit)
	if err != nil {
		return 0, err
	}
	cols, _ := rows.Columns()
	type row struct {
		seq int64
		m   map[string]any
	}
	var page []row
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			rows.Close()
			return 0, err
		}
		r := row{m: map[string]any{}}
		for i, c := range cols {
			r.m[c] = jsonValue(vals[i])
			if c == "seq" {
				r.seq, _ = vals[i].(int64)
			}
		}
		page = append(page, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if len(page) == 0 {
		return 0, nil
	}
	lo, hi := page[0].seq, page[len(page)-1].seq
	// The pages of a department see the transitions its marts.warnings row
	// filter lets through, worked out by the engine with the same SQL the
	// SQL layer applies (one query per distinct filter).
	allowed := map[string]map[int64]bool{}
	for _, sc := range s.live.scopes() {
		f, ok := sc.Allows(WarningsTable)
		if !ok || f == "" || allowed[f] != nil {
			continue
		}
		set, err := s.seqsWhere(ctx, f, lo, hi)
		if err != nil {
			s.d.Log.Warn("dashboard warnings push: row filter", "filter", f, "err", err)
		}
		allowed[f] = set
	}
	for _, r := range page {
		s.live.publishView("warning", func(sc auth.Scope) (any, bool) {
			f, ok := sc.Allows(WarningsTable)
			return r.m, ok && (f == "" || allowed[f][r.seq])
		})
		if r.seq > s.lastSeq[unit] {
			s.lastSeq[unit] = r.seq
		}
	}
	return len(page), nil
}

// seqsWhere is the set of marts.warnings seqs in [lo, hi] that filter keeps
// (empty, never nil, on error: a filter that cannot run shows nothing).
func (s *Server) seqsWhere(ctx context.Context, filter string, lo, hi int64) (map[int64]bool, error) {
	set := map[int64]bool{}
	rows, err := s.d.Engine.Query(ctx, `SELECT seq FROM marts.warnings WHERE seq BETWEEN ? AND ? AND (`+filter+`)`, lo, hi)
	if err != nil {
		return set, err
	}
	defer rows.Close()
	for rows.Next() {
		var q int64
		if err := rows.Scan(&q); err != nil {
			return set, err
		}
		set[q] = true
	}
	return set, rows.Err()
}

// Start primes the push position so that only warnings committed after
// start are pushed as new, and sends the warnings' freshness to open pages
// until ctx ends.
func (s *Server) Start(ctx context.Context) {
	go s.freshLoop(ctx)
	s.pushMu.Lock()
	defer s.pushMu.Unlock()
	s.lastSeq = map[int64]int64{}
	rows, err := s.d.Engine.Query(ctx, fmt.Sprintf(`SELECT seq %% %d, max(seq) FROM marts.warnings GROUP BY 1`, s.stride()))
	if err != nil {
		return // no table yet: every transition is new
	}
	defer rows.Close()
	for rows.Next() {
		var unit, q *int64
		if rows.Scan(&unit, &q) == nil && unit != nil && q != nil {
			s.lastSeq[*unit] = *q
		}
	}
}
