package app

import (
	"context"
	"encoding/json"
	"net/http"

	"citybrain/internal/auth"
	"citybrain/warehouse"
)

// Handler is citybrain serve's HTTP interface: health, status and tables.
//
//	GET /healthz                 200 "ok" (the one path open to anonymous callers)
//	GET /api/status              per-source lag, rejects, last commit (JSON)
//	GET /api/tables              tables with snapshot, rows, files (JSON)
//
// Status and tables need a logged-in user and answer within the user's
// scope (auth.Scope.Sees): a department sees only its own tables and
// sources, and no whole-table figures (rows, offsets, rejects) of a table it
// reads through a row filter (auth.Scope.Counts); the connectors' positions
// (Kafka offsets, source cursors) are the admins' only.
//
// SQL (/api/sql) is the SQL access service's (warehouse/sqlservice).
func (a *App) Handler(eng *warehouse.Engine, users *auth.Store) http.Handler {
	mux := http.NewServeMux()
	a.Mount(mux, eng, users)
	return mux
}

// Mount registers the handlers of Handler on mux. users nil leaves status
// and tables unscoped (tests only).
func (a *App) Mount(mux *http.ServeMux, eng *warehouse.Engine, users *auth.Store) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	scope := func(w http.ResponseWriter, r *http.Request) (auth.Scope, bool) {
		if users == nil {
			return auth.Scope{All: true, Admin: true}, true
		}
		u, err := users.FromRequest(r)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Basic realm="citybrain"`)
			writeJSONCode(w, http.StatusUnauthorized, map[string]string{"error": "需要登录 login required: " + err.Error()})
			return auth.Scope{}, false
		}
		return users.ScopeOf(u), true
	}
	mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, r *http.Request) {
		sc, ok := scope(w, r)
		if !ok {
			return
		}
		st, err := a.Status(r.Context())
		writeJSON(w, ScopeStatus(sc, st), err)
	})
	mux.HandleFunc("GET /api/tables", func(w http.ResponseWriter, r *http.Request) {
		sc, ok := scope(w, r)
		if !ok {
			return
		}
		t, err := a.Lake.Tables(r.Context())
		writeJSON(w, ScopeTables(sc, t), err)
	})
	// /api/sql, /api/catalog and /api/openapi.json are mounted by the SQL
	// access service (warehouse/sqlservice): authenticated, sandboxed,
	// scoped and audited.
}

// ScopeStatus keeps the sources whose table sc sees; a table read through
// a row filter keeps its name, last commit and note only.
func ScopeStatus(sc auth.Scope, st []SourceStatus) []any {
	out := []any{}
	for _, s := range st {
		switch {
		case !sc.Sees(s.Table):
		case sc.Counts(s.Table):
			out = append(out, s)
		default:
			out = append(out, map[string]any{"source": s.Source, "table": s.Table, "last_commit": s.LastCommit,
				"note": "按行过滤，不显示整表计数 row-filtered: whole-table counts are not shown"})
		}
	}
	return out
}

// ScopeTables keeps the tables sc sees. Non-admins get no connector
// positions (State); a table read through a row filter keeps its name,
// snapshot and commit time only.
func ScopeTables(sc auth.Scope, ts []warehouse.TableInfo) []any {
	out := []any{}
	for _, t := range ts {
		switch {
		case !sc.Sees(t.Name):
		case sc.Counts(t.Name):
			if !sc.Admin {
				t.State = warehouse.State{}
			}
			out = append(out, t)
		default:
			out = append(out, map[string]any{"Name": t.Name, "SnapshotID": t.SnapshotID, "Committed": t.Committed,
				"Note": "按行过滤，不显示整表计数 row-filtered: whole-table counts are not shown"})
		}
	}
	return out
}

func writeJSON(w http.ResponseWriter, v any, err error) {
	if err != nil {
		writeJSONCode(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	writeJSONCode(w, http.StatusOK, v)
}

func writeJSONCode(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// Result is a materialised query result.
type Result struct {
	Columns   []string `json:"columns"`
	Rows      [][]any  `json:"rows"`
	Truncated bool     `json:"truncated,omitempty"`
}

// QueryAll runs a query and collects up to limit rows (0: all).
func QueryAll(ctx context.Context, eng *warehouse.Engine, q string, limit int) (*Result, error) {
	rows, err := eng.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	res := &Result{Columns: cols, Rows: [][]any{}}
	for rows.Next() {
		if limit > 0 && len(res.Rows) >= limit {
			res.Truncated = true
			break
		}
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		res.Rows = append(res.Rows, vals)
	}
	return res, rows.Err()
}
