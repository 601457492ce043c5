package dashboards

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"citybrain/internal/auth"
	"citybrain/schemas"
)

// healthSnap is the broker-side health of every source, reused for
// dashboards.status_max_age.
type healthSnap struct {
	at      time.Time
	list    []SourceHealth
	sources []byte  // JSON Section of list
	sec     Section // the same, decoded (for scoped callers)
	rejects map[string][]RejectReason
	nrej    map[string]int64 // rejects count when the reasons were read
}

// healthData returns the current snapshot. When it is older than
// status_max_age it is read again: in the background while a previous one
// is served (requests never wait for the broker), in the request only for
// the very first one.
func (s *Server) healthData(ctx context.Context) *healthSnap {
	s.healthMu.Lock()
	h := s.health
	stale := h == nil || time.Since(h.at) >= s.cfg.StatusMaxAge
	start := stale && !s.healthBusy
	if start {
		s.healthBusy = true
	}
	s.healthMu.Unlock()
	if !stale || (!start && h != nil) {
		return h
	}
	if !start { // first snapshot being read by another request
		for {
			time.Sleep(10 * time.Millisecond)
			s.healthMu.Lock()
			h = s.health
			s.healthMu.Unlock()
			if h != nil {
				return h
			}
		}
	}
	if h != nil {
		go s.readHealth(context.WithoutCancel(ctx), h)
		return h
	}
	return s.readHealth(context.WithoutCancel(ctx), nil)
}

// readHealth reads the status and the dead-letter reasons that changed.
func (s *Server) readHealth(ctx context.Context, prev *healthSnap) *healthSnap {
	defer func() {
		s.healthMu.Lock()
		s.healthBusy = false
		s.healthMu.Unlock()
	}()
	now := time.Now()
	h := &healthSnap{at: now, rejects: map[string][]RejectReason{}, nrej: map[string]int64{}}
	sec := Section{Rows: []map[string]any{}}
	if s.d.Status == nil {
		sec = Section{Missing: "no_data", Detail: "no broker status in this process"}
	} else if st, err := s.d.Status(ctx); err != nil {
		sec = Section{Missing: "error", Detail: err.Error()}
	} else {
		h.list = st
		for _, x := range st {
			var last any
			lagS := any(nil)
			if !x.LastCommit.IsZero() {
				last = x.LastCommit.In(shanghai).Format(time.RFC3339)
				lagS = max(int64(now.Sub(x.LastCommit).Seconds()), 0) // never "-2 s ago"
			}
			sec.Rows = append(sec.Rows, map[string]any{"source": x.Source, "table": x.Table, "lag": x.Lag, "rejects": x.Rejects,
				"rows": x.Rows, "last_commit": last, "age_s": lagS, "note": x.Note})
			// Dead-letter reasons are read again only when the count moved.
			if x.Rejects > 0 && s.d.Rejects != nil {
				if prev != nil && prev.nrej[x.Source] == x.Rejects {
					h.rejects[x.Source], h.nrej[x.Source] = prev.rejects[x.Source], x.Rejects
				} else if rr, err := s.d.Rejects(ctx, x.Source); err == nil {
					h.rejects[x.Source], h.nrej[x.Source] = rr, x.Rejects
				} else {
					s.d.Log.Warn("dashboard dead letters", "source", x.Source, "err", err)
				}
			}
		}
	}
	h.sec = sec
	h.sources, _ = json.Marshal(sec)
	s.healthMu.Lock()
	s.health = h
	s.healthMu.Unlock()
	return h
}

// healthPage is GET /api/dash/health: the freshness of every path (paths:
// sources, warning engine and sink, model runner, query layer, with their
// worst level), per source the last record (event time), rows with today's
// event time, lag, rejects and their reasons.
func (s *Server) healthPage(w http.ResponseWriter, r *http.Request) {
	hs := s.healthData(r.Context())
	u := userOf(r)
	sc := s.d.Auth.ScopeOf(u)
	list, sources, rejects := hs.forScope(sc)
	today := time.Date(s.d.Now().In(shanghai).Year(), s.d.Now().In(shanghai).Month(), s.d.Now().In(shanghai).Day(), 0, 0, 0, 0, shanghai)
	// One cached answer per table, so a commit recomputes only its own
	// table's figures (the page reads every source's table).
	reg, err := schemas.Builtin()
	if err != nil {
		writeErr(w, http.StatusInternalServerError, err.Error())
		return
	}
	body := []byte{'{'}
	seen := map[string]bool{}
	for _, st := range list {
		sch := schemaOfTable(reg, st.Table)
		if sch == nil || sch.EventTime == "" || seen[st.Table] {
			continue
		}
		seen[st.Table] = true
		b, err := s.cache.get("/api/dash/health?"+today.Format(time.DateOnly)+"&table="+st.Table+"#"+scopeKey(u), func() ([]byte, []string, error) {
			x := s.newQ(context.WithoutCancel(r.Context()), u)
			sec := x.rows(`SELECT max(`+sch.EventTime+`) AS last_record, count(*) FILTER (WHERE `+sch.EventTime+` >= CAST(? AS TIMESTAMPTZ)) AS rows_today FROM {0}`,
				[]string{st.Table}, today.Format("2006-01-02 15:04:05-07:00"))
			var v any = map[string]any{"missing": sec.Missing, "detail": sec.Detail}
			if len(sec.Rows) == 1 {
				v = sec.Rows[0]
			}
			b, err := json.Marshal(v)
			return b, x.tables, err
		})
		if err != nil {
			writeErr(w, http.StatusInternalServerError, err.Error())
			return
		}
		if len(body) > 1 {
			body = append(body, ',')
		}
		body = append(body, jsonOf(st.Table)...)
		body = append(body, ':')
		body = append(body, b...)
	}
	body = append(body, '}')
	rej, _ := json.Marshal(rejects)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write([]byte(`{"sources":`))
	w.Write(sources)
	w.Write([]byte(`,"tables":`))
	w.Write(body)
	w.Write([]byte(`,"rejects":`))
	w.Write(rej)
	w.Write([]byte(`,"paths":`))
	w.Write(jsonOf(scopePaths(sc, s.paths(hs.list))))
	w.Write([]byte(`,"at":"` + hs.at.In(shanghai).Format(time.RFC3339) + `"}` + "\n"))
}

// forScope is what sc may see of the snapshot: the sources of tables it
// sees (list, the JSON section and the dead-letter reasons); a table read
// through a row filter shows no lag, rejects or rows (auth.Scope.Counts).
func (h *healthSnap) forScope(sc auth.Scope) (list []SourceHealth, sources []byte, rejects map[string][]RejectReason) {
	if sc.All {
		return h.list, h.sources, h.rejects
	}
	rejects = map[string][]RejectReason{}
	for _, x := range h.list {
		if !sc.Sees(x.Table) {
			continue
		}
		if !sc.Counts(x.Table) {
			x.Lag, x.Rejects, x.Rows = 0, 0, 0
		} else if rr, ok := h.rejects[x.Source]; ok {
			rejects[x.Source] = rr
		}
		list = append(list, x)
	}
	sec := Section{Missing: h.sec.Missing, Detail: h.sec.Detail}
	if h.sec.Rows != nil {
		sec.Rows = []map[string]any{}
	}
	for _, r := range h.sec.Rows {
		t, _ := r["table"].(string)
		if !sc.Sees(t) {
			continue
		}
		if !sc.Counts(t) {
			c := make(map[string]any, len(r))
			for k, v := range r {
				c[k] = v
			}
			c["lag"], c["rejects"], c["rows"] = nil, nil, nil
			r = c
		}
		sec.Rows = append(sec.Rows, r)
	}
	sources, _ = json.Marshal(sec)
	return list, sources, rejects
}

func schemaOfTable(reg *schemas.Registry, table string) *schemas.Schema {
	for _, n := range reg.Names() {
		if sc, err := reg.Get(n); err == nil && sc.Table == table {
			return sc
		}
	}
	return nil
}
