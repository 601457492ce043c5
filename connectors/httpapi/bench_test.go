package httpapi

import (
	"context"
	"net/http/httptest"
	"testing"

	"citybrain/connectors"
	"citybrain/internal/benchrun/conndata"
)

// BenchmarkRead measures Source.Read of 100k deterministic mobile_signal
// records (package conndata) served in pages of 1000 (offset pagination)
// by an httptest server on 127.0.0.1 from memory, through the mapping into
// an Emit that only counts; anchor=encoding-json decodes the same page
// bodies with encoding/json, no HTTP. Reproduce with
//
//	go test -run '^$' -bench 'Read' -benchtime 5x ./connectors/httpapi/
//
// (make bench runs it too: go run ./internal/benchrun -suite connectors).
func BenchmarkRead(b *testing.B) {
	const rows, pageSize = 100_000, 1000
	pages := conndata.JSONPages(rows, pageSize)
	var size int64
	for _, p := range pages {
		size += int64(len(p))
	}
	b.Run("pagination=offset/page=1000/rows=100000", func(b *testing.B) {
		srv := httptest.NewServer(&conndata.PageServer{Pages: pages, PageSize: pageSize})
		defer srv.Close()
		m, err := conndata.Mapper()
		if err != nil {
			b.Fatal(err)
		}
		src, err := New(Config{URL: srv.URL + "/signals", Pagination: Pagination{Kind: PageOffset, PageSize: pageSize}}, m)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.SetBytes(size)
		for b.Loop() {
			var c conndata.Counter
			if err := src.Read(context.Background(), connectors.Positions{}, c.Emit); err != nil {
				b.Fatal(err)
			}
			if err := c.Check(rows); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	})
	b.Run("anchor=encoding-json/rows=100000", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(size)
		for b.Loop() {
			if n, err := conndata.AnchorJSONPages(pages); err != nil || n != rows {
				b.Fatalf("%d rows, %v", n, err)
			}
		}
		b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	})
}
