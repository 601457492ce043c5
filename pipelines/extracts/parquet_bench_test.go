package extracts

import (
	"fmt"
	"io"
	"testing"
)

// benchBatch is a batch shaped like the extracts bench's raw.incidents:
// text (some Chinese), a timestamp, doubles with nulls.
func benchBatch(n int) (*colBatch, []Column) {
	cols := []Column{
		{Name: "id", Type: "VARCHAR"}, {Name: "received_at", Type: "TIMESTAMP WITH TIME ZONE"},
		{Name: "category", Type: "VARCHAR"}, {Name: "title", Type: "VARCHAR"},
		{Name: "description", Type: "VARCHAR"}, {Name: "address", Type: "VARCHAR"},
		{Name: "township", Type: "VARCHAR"}, {Name: "street_code", Type: "VARCHAR"},
		{Name: "longitude", Type: "DOUBLE"}, {Name: "latitude", Type: "DOUBLE"},
		{Name: "source_system", Type: "VARCHAR"},
	}
	b := &colBatch{n: n, cols: make([]colVec, len(cols))}
	for j, c := range cols {
		b.cols[j].reset(kindOf(c.Type), n)
	}
	cats := []string{"fire", "medical", "traffic", "police", "other"}
	for i := range n {
		b.cols[0].strs[i] = fmt.Sprintf("JQ%08d", i)
		b.cols[1].ints[i] = 1_800_000_000_000_000 + int64(i)*2_000_000
		b.cols[2].strs[i] = cats[i%5]
		b.cols[3].strs[i] = fmt.Sprintf("西城区警情 %d", i%977)
		b.cols[4].strs[i] = "群众报警称有人员受伤, 需要救护"
		b.cols[5].strs[i] = fmt.Sprintf("西长安街%d号", i%3001)
		b.cols[6].strs[i] = "西长安街街道"
		b.cols[7].strs[i] = fmt.Sprintf("1101020%02d", i%15)
		b.cols[8].floats[i] = 116.30 + float64(i%10000)/1e5
		if i%11 != 0 {
			b.cols[9].floats[i] = 39.88 + float64(i%7000)/1e5
		} else {
			b.cols[9].setNull(i, n)
		}
		b.cols[10].strs[i] = "119"
	}
	return b, cols
}

// BenchmarkParquet writes 1M rows (in 2,048-row batches) to Parquet.
func BenchmarkParquet(b *testing.B) {
	batch, cols := benchBatch(2048)
	for b.Loop() {
		w := newParquet(io.Discard, Definition{})
		if err := w.Header(cols); err != nil {
			b.Fatal(err)
		}
		for range 1_000_000 / 2048 {
			if err := w.Batch(batch); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
