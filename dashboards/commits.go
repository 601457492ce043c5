package dashboards

import (
	"context"
	"fmt"
	"time"
)

// Committed tells the server a table was committed: cached answers that
// read it are dropped, open pages are told to refresh, and new rows of
// marts.warnings are pushed to them as "warning" events. Call it from the
// commit bus (it returns quickly; the push runs in the background).
func (s *Server) Committed(table string) {
	s.cache.invalidate(table)
	s.live.publish("refresh", map[string]any{"tables": []string{table}})
	if table == WarningsTable {
		go s.pushWarnings(context.Background())
	}
}

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
	for {
		n, err := s.pushPage(ctx)
		if err != nil {
			s.d.Log.Warn("dashboard warnings push", "err", err)
			return
		}
		if n < pushPage {
			return
		}
	}
}

// pushPage is how many transitions one query of pushWarnings reads.
const pushPage = 1000

func (s *Server) pushPage(ctx context.Context) (int, error) {
	rows, err := s.d.Engine.Query(ctx, fmt.Sprintf(`SELECT * FROM marts.warnings WHERE seq > ? ORDER BY seq LIMIT %d`, pushPage), s.lastSeq)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	n := 0
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return n, err
		}
		m := map[string]any{}
		for i, c := range cols {
			m[c] = jsonValue(vals[i])
			if c == "seq" {
				if q, ok := vals[i].(int64); ok && q > s.lastSeq {
					s.lastSeq = q
				}
			}
		}
		s.live.publish("warning", m)
		n++
	}
	return n, rows.Err()
}

// Start primes the push position so that only warnings committed after
// start are pushed as new, and sends the warnings' freshness to open pages
// until ctx ends.
func (s *Server) Start(ctx context.Context) {
	go s.freshLoop(ctx)
	s.pushMu.Lock()
	defer s.pushMu.Unlock()
	rows, err := s.d.Engine.Query(ctx, `SELECT max(seq) FROM marts.warnings`)
	if err != nil {
		return // no table yet: every transition is new
	}
	defer rows.Close()
	if rows.Next() {
		var q *int64
		if rows.Scan(&q) == nil && q != nil {
			s.lastSeq = *q
		}
	}
}
