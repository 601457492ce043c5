package app

import (
	"context"
	"runtime/metrics"
	"time"

	"citybrain/internal/proc"
)

// MemoryFunc reports the memory of one or more DuckDB databases a service
// holds open, by label (query, sandbox:admin, warnings …), in bytes.
type MemoryFunc func(ctx context.Context) (map[string]int64, error)

// ReportMemory adds fn to what /metrics reports as
// citybrain_duckdb_memory_bytes{db=…}: serve's resident memory is mostly
// DuckDB's (C, invisible to Go's heap profile), and growth is found by
// which database it is in.
func (rt *Runtime) ReportMemory(fn MemoryFunc) {
	rt.mu.Lock()
	rt.memory = append(rt.memory, fn)
	rt.mu.Unlock()
}

// sampleMemory sets the memory gauges: every reported DuckDB database, Go's
// heap, and the process's resident set.
func (rt *Runtime) sampleMemory(ctx context.Context) {
	rt.mu.Lock()
	fns := append([]MemoryFunc(nil), rt.memory...)
	rt.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for _, fn := range fns {
		m, err := fn(ctx)
		if err != nil {
			continue
		}
		for db, n := range m {
			rt.Fresh.Gauge("citybrain_duckdb_memory_bytes", "Memory held by each DuckDB database (duckdb_memory()) / 各 DuckDB 库占用内存", float64(n), "db", db)
		}
	}
	s := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
	}
	metrics.Read(s)
	if s[0].Value.Kind() == metrics.KindUint64 {
		rt.Fresh.Gauge("citybrain_go_heap_objects_bytes", "Go heap: live and not yet swept objects / Go 堆对象", float64(s[0].Value.Uint64()))
		rt.Fresh.Gauge("citybrain_go_memory_bytes", "Memory the Go runtime holds from the OS, less what it released / Go 运行时占用内存", float64(s[1].Value.Uint64()-s[2].Value.Uint64()))
	}
	if rt.App != nil && rt.App.Lake != nil {
		rt.Fresh.Gauge("citybrain_lake_pruned_files_total", "Data files statements skipped by their filters (manifest bounds, partitions) / 查询按条件跳过的数据文件数", float64(rt.App.Lake.PrunedFiles()))
	}
	if rt.App != nil && rt.App.Lake != nil && rt.App.Lake.Remote() {
		st := rt.App.Lake.CacheStats()
		rt.Fresh.Gauge("citybrain_lake_cache_bytes", "Local copies of the object store's data files / 对象存储数据文件的本地缓存", float64(rt.App.Lake.CacheSize()))
		rt.Fresh.Gauge("citybrain_lake_cache_fetched_bytes_total", "Bytes fetched from the object store into the cache / 从对象存储拉取的字节数", float64(st.FetchedBytes))
		rt.Fresh.Gauge("citybrain_lake_cache_misses_total", "Data files fetched from the object store / 从对象存储拉取的文件数", float64(st.Misses))
		rt.Fresh.Gauge("citybrain_lake_cache_hits_total", "Data files served from the local cache / 本地缓存命中数", float64(st.Hits))
	}
	if rss, ok := proc.Resident(); ok {
		rt.Fresh.Gauge("citybrain_process_resident_bytes", "Resident set of the serve process / 进程常驻内存", float64(rss))
	}
}
