package app

import (
	"context"
	"encoding/json"
	"net/http"

	"citybrain/warehouse"
)

// Handler is citybrain serve's HTTP interface: health, status and tables.
//
//	GET /healthz                 200 "ok"
//	GET /api/status              per-source lag, rejects, last commit (JSON)
//	GET /api/tables              tables with snapshot, rows, files (JSON)
//
// SQL (/api/sql) is the SQL access service's (warehouse/sqlservice).
func (a *App) Handler(eng *warehouse.Engine) http.Handler {
	mux := http.NewServeMux()
	a.Mount(mux, eng)
	return mux
}

// Mount registers the handlers of Handler on mux.
func (a *App) Mount(mux *http.ServeMux, eng *warehouse.Engine) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, r *http.Request) {
		st, err := a.Status(r.Context())
		writeJSON(w, st, err)
	})
	mux.HandleFunc("GET /api/tables", func(w http.ResponseWriter, r *http.Request) {
		t, err := a.Lake.Tables(r.Context())
		writeJSON(w, t, err)
	})
	// /api/sql, /api/catalog and /api/openapi.json are mounted by the SQL
	// access service (warehouse/sqlservice): authenticated, sandboxed,
	// scoped and audited.
}

func writeJSON(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		return
	}
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
