package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"citybrain/internal/auth"
	"citybrain/pipelines/extracts"
	"citybrain/pipelines/extracts/extracttest"
	"citybrain/schemas"
	"citybrain/warehouse"
)

// extractRows is the size of the extracts benchmark (the 1M).
const extractRows = 1_000_000

// extractFormats is -extract-formats: the formats the suite runs.
var extractFormats = "csv,csv-gb18030,parquet,xlsx"

// extractRuns is how many times each side runs; the median counts.
const extractRuns = 5

func init() {
	registerSuite(Suite{
		Name: "extracts",
		Doc: `Time to extract 1M rows of raw.incidents (11 columns: text incl. Chinese, timestamps, doubles, nulls)
from the lake to each format with pipelines/extracts against DuckDB's own COPY of the very same SQL (the extract's
planned query: department scope applied, snapshot pinned, time travel resolved) to the same format, in the same
process and run. Ours = the whole run: plan and scope checks, the query read in column batches (DuckDB's
streaming result through its C API, chunks read in place), PII rules, rendering (CSV with BOM/CRLF/formula
guard, or GB18030; Parquet via parquet-go, snappy, 122,880-row groups), SHA-256 while writing, temp file + rename,
manifest JSON and history line (no delivery). DuckDB = COPY (query) TO file: CSV with header (UTF-8, no BOM),
Parquet with its default snappy. Median of 5 runs each, the two sides alternating; ratio = ours / DuckDB (time). Target ≤ 1.2× for CSV and
Parquet. XLSX's anchor is DuckDB's excel extension, which needs INSTALL from the internet: skipped when it cannot
be loaded.`,
		Reproduce: "go run ./internal/benchrun -suite extracts",
		Run:       runExtractsBench,
	})
}

func runExtractsBench(ctx context.Context, tmp string) []Result {
	fail := func(name string, err error) []Result {
		return []Result{{Name: name, Status: "failed", Reason: err.Error(), Unit: "s"}}
	}
	log := slog.New(slog.DiscardHandler)
	wcfg := warehouse.DefaultConfig()
	lake, err := warehouse.Open(ctx, wcfg, filepath.Join(tmp, "data"), log)
	if err != nil {
		return fail("extracts", err)
	}
	defer lake.Close()
	reg, err := schemas.Builtin()
	if err != nil {
		return fail("extracts", err)
	}
	s, err := reg.Get("incidents")
	if err != nil {
		return fail("extracts", err)
	}
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	cats := []string{"fire", "medical", "traffic", "police", "other"}
	if _, err := extracttest.Fill(ctx, lake, s, extractRows, func(i int, r schemas.Record) {
		r[s.Index("id")] = fmt.Sprintf("JQ%08d", i)
		r[s.Index("received_at")] = t0.Add(time.Duration(i) * 2 * time.Second)
		r[s.Index("category")] = cats[i%5]
		r[s.Index("title")] = fmt.Sprintf("西城区警情 %d", i%977)
		r[s.Index("description")] = "群众报警称有人员受伤, 需要救护"
		r[s.Index("address")] = fmt.Sprintf("西长安街%d号", i%3001)
		r[s.Index("township")] = "西长安街街道"
		r[s.Index("street_code")] = fmt.Sprintf("1101020%02d", i%15)
		r[s.Index("longitude")] = 116.30 + float64(i%10000)/1e5
		if i%11 != 0 {
			r[s.Index("latitude")] = 39.88 + float64(i%7000)/1e5
		}
		r[s.Index("source_system")] = "119"
	}); err != nil {
		return fail("extracts", err)
	}
	eng, err := warehouse.NewEngine(ctx, lake)
	if err != nil {
		return fail("extracts", err)
	}
	defer eng.Close()
	ac := auth.DefaultConfig()
	ac.Departments = []auth.Department{{Name: "emergency", Tables: map[string]string{"raw.incidents": ""}}}
	users, err := auth.Open(ac, tmp)
	if err != nil {
		return fail("extracts", err)
	}
	cols := []string{"id", "received_at", "category", "title", "description", "address", "township", "street_code", "longitude", "latitude", "source_system"}
	def := func(format, enc string) extracts.Definition {
		return extracts.Definition{Name: "bench-" + format + strings.TrimPrefix(enc, "utf-8-bom"), Department: "emergency", Format: format, Encoding: enc,
			Source: extracts.Source{Table: "raw.incidents"}, Columns: cols, OrderBy: []string{"id"}}
	}
	defs := []extracts.Definition{def("csv", ""), def("csv", "gb18030"), def("parquet", ""), def("xlsx", "")}
	cfg := extracts.DefaultConfig()
	cfg.Definitions = defs
	r, err := extracts.NewRunner(cfg, filepath.Join(tmp, "extracts"), eng, lake, users, log)
	if err != nil {
		return fail("extracts", err)
	}
	_, excelErr := eng.DB().ExecContext(ctx, "LOAD excel")
	var out []Result
	for _, d := range defs {
		name := "extracts/" + d.Format
		if d.Encoding != "" {
			name += "-" + d.Encoding
		}
		if !slices.Contains(strings.Split(extractFormats, ","), strings.TrimPrefix(name, "extracts/")) {
			continue
		}
		res := Result{Name: name, Rows: extractRows, Unit: "s"}
		copyOpts := map[string]string{"csv": "FORMAT csv, HEADER", "parquet": "FORMAT parquet", "xlsx": "FORMAT xlsx, HEADER true"}[d.Format]
		anchorName := "DuckDB COPY TO " + d.Format
		anchor := d.Format != "xlsx" || excelErr == nil
		// The two sides alternate (ours, DuckDB's, ours, …) so that a change
		// of load on the machine falls on both alike.
		var ours, theirs []float64
		var m *extracts.Manifest
		var anchorErr error
		for i := range extractRuns {
			start := time.Now()
			m, err = r.Run(ctx, d.Name, extracts.RunOptions{Period: t0.Add(time.Duration(i) * time.Hour), NoDeliver: true, Trigger: "bench"})
			if err != nil {
				res.Status, res.Reason = "failed", err.Error()
				break
			}
			ours = append(ours, time.Since(start).Seconds())
			os.Remove(r.FilePath(m))
			if !anchor || anchorErr != nil {
				continue
			}
			final, err := eng.Rewrite(ctx, m.Query)
			if err != nil {
				anchorErr = err
				continue
			}
			dst := filepath.Join(tmp, fmt.Sprintf("duckdb-%d.%s", i, d.Format))
			start = time.Now()
			if _, err := eng.DB().ExecContext(ctx, fmt.Sprintf("COPY (%s) TO '%s' (%s)", final, dst, copyOpts)); err != nil {
				anchorErr = err
				continue
			}
			theirs = append(theirs, time.Since(start).Seconds())
			os.Remove(dst)
		}
		if res.Status == "failed" {
			out = append(out, res)
			continue
		}
		if m.Rows != extractRows {
			res.Status, res.Reason = "failed", fmt.Sprintf("extract wrote %d rows, want %d", m.Rows, extractRows)
			out = append(out, res)
			continue
		}
		res.Status, res.Figure, res.WallS = "ok", extractMedian(ours), extractMedian(ours)
		res.RowsPerS = extractRows / res.Figure
		if !anchor {
			res.Reason = "anchor skipped: DuckDB's excel extension cannot be loaded offline (" + firstLine(excelErr.Error()) + ")"
			out = append(out, res)
			continue
		}
		if anchorErr != nil {
			res.Reason = "anchor failed: " + firstLine(anchorErr.Error())
			out = append(out, res)
			continue
		}
		a := extractMedian(theirs)
		reader := "; reader: " + extracts.Reader
		res.Anchor = &Anchor{Name: anchorName, Figure: a, Unit: "s", Ratio: res.Figure / a, RowsPerS: extractRows / a}
		switch {
		case d.Format == "csv" && d.Encoding == "":
			res.Reason = fmt.Sprintf("ours: UTF-8 with BOM, CRLF, SHA-256, manifest; DuckDB: UTF-8 CSV; target ≤ 1.2×: %s%s", metOrNot(res.Anchor.Ratio <= 1.2), reader)
		case d.Format == "csv":
			res.Reason = "GB18030 (DuckDB writes UTF-8 only: anchor is its UTF-8 COPY)" + reader
		case d.Format == "parquet":
			res.Reason = fmt.Sprintf("snappy both (ours parquet-go, SHA-256, manifest); target ≤ 1.2×: %s%s", metOrNot(res.Anchor.Ratio <= 1.2), reader)
		}
		out = append(out, res)
	}
	return out
}

func metOrNot(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func extractMedian(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}
