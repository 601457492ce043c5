package dashboards

import (
	"context"
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

// pushWarnings sends the warning transitions newer than the last pushed.
func (s *Server) pushWarnings(ctx context.Context) {
	s.pushMu.Lock()
	defer s.pushMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if s.lastPushed.IsZero() {
		s.lastPushed = s.d.Now().Add(-time.Hour)
	}
	rows, err := s.d.Engine.Query(ctx, `SELECT * FROM marts.warnings WHERE transition_at > CAST(? AS TIMESTAMPTZ) ORDER BY transition_at LIMIT 1000`,
		s.lastPushed.Format("2006-01-02 15:04:05.999999-07:00"))
	if err != nil {
		s.d.Log.Warn("dashboard warnings push", "err", err)
		return
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return
		}
		m := map[string]any{}
		for i, c := range cols {
			m[c] = jsonValue(vals[i])
			if t, ok := vals[i].(time.Time); ok && c == "transition_at" && t.After(s.lastPushed) {
				s.lastPushed = t
			}
		}
		s.live.publish("warning", m)
	}
}

// Start primes the push position so that only warnings committed after
// start are pushed as new, and sends the warnings' freshness to open pages
// until ctx ends.
func (s *Server) Start(ctx context.Context) {
	go s.freshLoop(ctx)
	s.pushMu.Lock()
	defer s.pushMu.Unlock()
	s.lastPushed = s.d.Now()
	rows, err := s.d.Engine.Query(ctx, `SELECT max(transition_at) FROM marts.warnings`)
	if err != nil {
		return
	}
	defer rows.Close()
	if rows.Next() {
		var t *time.Time
		if rows.Scan(&t) == nil && t != nil {
			s.lastPushed = *t
		}
	}
}
