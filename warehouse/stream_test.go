package warehouse

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func streamEngine(t *testing.T) *Engine {
	t.Helper()
	lake, _ := testLake(t, smallMaintenance())
	e, err := NewEngine(context.Background(), lake)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// Every supported type arrives with its values and NULLs, in order, and
// every chunk stays readable until it is released — here only after Stream
// has returned and the whole result has been fetched.
func TestStreamTypesAndLifetime(t *testing.T) {
	e := streamEngine(t)
	const n = 20_000
	q := fmt.Sprintf(`SELECT i::BIGINT AS i,
		CASE WHEN i %% 7 = 0 THEN NULL ELSE 'r' || i || repeat('长', (i %% 9)::INTEGER) END AS s,
		i %% 3 = 0 AS b, (i %% 100)::TINYINT AS t8, (i %% 30000)::SMALLINT AS i16, i::INTEGER AS i32,
		(i %% 250)::UTINYINT AS u8, (i %% 60000)::USMALLINT AS u16, i::UINTEGER AS u32,
		i * 0.5::DOUBLE AS d, (i * 0.25)::FLOAT AS f, DATE '2020-01-01' + (i %% 1000)::INTEGER AS day,
		TIMESTAMP '2020-01-01' + to_microseconds(i) AS ts, TIMESTAMPTZ '2020-01-01 00:00:00+00' + to_seconds(i) AS tz,
		CAST(TIMESTAMP '2020-01-01' + to_seconds(i) AS TIMESTAMP_S) AS ts_s,
		CAST(TIMESTAMP '2020-01-01' + to_microseconds(i) AS TIMESTAMP_NS) AS ts_ns,
		CASE WHEN i %% 5 = 0 THEN NULL ELSE i END AS maybe
		FROM range(%d) t(i) ORDER BY i DESC`, n)
	var cols []StreamColumn
	var chunks []*Chunk
	err := e.Stream(context.Background(), q, func(c []StreamColumn) error {
		cols = c
		return nil
	}, func(c *Chunk) error {
		chunks = append(chunks, c)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantTypes := "BIGINT VARCHAR BOOLEAN TINYINT SMALLINT INTEGER UTINYINT USMALLINT UINTEGER DOUBLE FLOAT DATE TIMESTAMP TIMESTAMPTZ TIMESTAMP_S TIMESTAMP_NS BIGINT"
	var got []string
	for _, c := range cols {
		got = append(got, c.Type)
	}
	if strings.Join(got, " ") != wantTypes || cols[1].Name != "s" {
		t.Fatalf("columns %v, want types %s", cols, wantTypes)
	}
	if len(chunks) < 5 {
		t.Fatalf("%d chunks for %d rows: want several", len(chunks), n)
	}
	epoch := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	row := 0
	for _, c := range chunks {
		ids := Column[int64](c, 0)
		strs := c.Strings(1)
		sValid := c.Valid(1, nil)
		maybeValid := c.Valid(16, nil)
		if sValid == nil || maybeValid == nil {
			t.Fatal("no NULLs reported in columns that have them")
		}
		if c.Valid(0, nil) != nil {
			t.Error("NULLs reported in a column without any")
		}
		for r := range c.Len() {
			i := int64(n - 1 - row)
			row++
			if ids[r] != i {
				t.Fatalf("row %d: i=%d, want %d", row, ids[r], i)
			}
			if want := i%7 != 0; sValid[r] != want {
				t.Fatalf("i=%d: s valid=%v", i, sValid[r])
			} else if want {
				if s, w := string(strs.Bytes(r)), fmt.Sprintf("r%d%s", i, strings.Repeat("长", int(i%9))); s != w {
					t.Fatalf("i=%d: s=%q, want %q", i, s, w)
				}
			}
			ok := Column[bool](c, 2)[r] == (i%3 == 0) && int64(Column[int8](c, 3)[r]) == i%100 &&
				int64(Column[int16](c, 4)[r]) == i%30000 && int64(Column[int32](c, 5)[r]) == i &&
				int64(Column[uint8](c, 6)[r]) == i%250 && int64(Column[uint16](c, 7)[r]) == i%60000 &&
				int64(Column[uint32](c, 8)[r]) == i && Column[float64](c, 9)[r] == float64(i)*0.5 &&
				Column[float32](c, 10)[r] == float32(i)*0.25 && int64(Column[int32](c, 11)[r]) == 18262+i%1000 &&
				Column[int64](c, 12)[r] == epoch.UnixMicro()+i && Column[int64](c, 13)[r] == epoch.UnixMicro()+i*1e6 &&
				Column[int64](c, 14)[r] == epoch.Unix()+i && Column[int64](c, 15)[r] == (epoch.UnixMicro()+i)*1e3 &&
				maybeValid[r] == (i%5 != 0) && (i%5 == 0 || Column[int64](c, 16)[r] == i)
			if !ok {
				t.Fatalf("i=%d: a fixed-width value differs", i)
			}
		}
	}
	if row != n {
		t.Fatalf("%d rows, want %d", row, n)
	}
	for _, c := range chunks {
		c.Release()
		c.Release() // twice is harmless
	}
}

// A column type it does not hand over, or a view of the engine, is
// ErrNotStreamable before cols is called; a failure while executing is an
// error of its own.
func TestStreamNotStreamable(t *testing.T) {
	e := streamEngine(t)
	ctx := context.Background()
	for _, q := range []string{"SELECT CAST(1.5 AS DECIMAL(9,2)) AS d", "SELECT * FROM raw.weather", "SELECT [1, 2] AS l"} {
		err := e.Stream(ctx, q, func([]StreamColumn) error {
			t.Errorf("%s: cols called", q)
			return nil
		}, func(c *Chunk) error { c.Release(); return nil })
		if !errors.Is(err, ErrNotStreamable) {
			t.Errorf("%s: %v, want ErrNotStreamable", q, err)
		}
	}
	err := e.Stream(ctx, "SELECT CAST(CASE WHEN i = 150000 THEN 'x' ELSE i::VARCHAR END AS INTEGER) AS v FROM range(200000) t(i) ORDER BY i",
		func([]StreamColumn) error { return nil }, func(c *Chunk) error { c.Release(); return nil })
	if err == nil || errors.Is(err, ErrNotStreamable) || !strings.Contains(err.Error(), "Conversion") {
		t.Errorf("a failing cast: %v, want DuckDB's conversion error", err)
	}
}

// Cancelling the context stops the stream with the context's error; the
// chunks handed over until then stay valid until released.
func TestStreamCancel(t *testing.T) {
	e := streamEngine(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var held []*Chunk
	err := e.Stream(ctx, "SELECT i, 'value ' || i || ' of a long enough string' AS s FROM range(1000000) t(i) ORDER BY i DESC",
		func([]StreamColumn) error { return nil },
		func(c *Chunk) error {
			held = append(held, c)
			if len(held) == 3 {
				cancel()
			}
			return nil
		})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("%v, want context.Canceled", err)
	}
	if len(held) != 3 {
		t.Fatalf("%d chunks before the stream stopped", len(held))
	}
	if s := string(held[0].Strings(1).Bytes(0)); s != "value 999999 of a long enough string" {
		t.Errorf("first row %q", s)
	}
	for _, c := range held {
		c.Release()
	}
	// The engine's streaming instance still works.
	n := 0
	if err := e.Stream(context.Background(), "SELECT 42::BIGINT AS x", func([]StreamColumn) error { return nil },
		func(c *Chunk) error { n += c.Len(); c.Release(); return nil }); err != nil || n != 1 {
		t.Fatalf("after a cancel: %v, %d rows", err, n)
	}
}
