package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"citybrain/internal/testenv"
)

// The "pyiceberg append" anchor: the same rows as the ingest benchmark's
// CSV, loaded into an Arrow table with pyarrow (not timed) and appended with
// pyiceberg 0.12.0 (pyicebergBenchRequirements) into a table of a
// SqlCatalog on SQLite with a local warehouse, of the same schema as
// raw.mobile_signal's data columns (window_start timestamptz, partitioned by
// day(window_start); Parquet zstd, pyiceberg's default), in batches of
// pyicebergBatchRows rows, one append (one snapshot) each — about as often
// as our lake writer commits. Only the appends are timed: wall
// (perf_counter) and CPU (process_time, all threads).

// pyicebergBenchRequirements are testenv.PyIcebergRequirements plus
// pyiceberg's pyiceberg-core extra (its Rust transforms), which pyiceberg
// needs to append to a table partitioned by day(...).
var pyicebergBenchRequirements = []string{
	"pyiceberg[pyarrow,sql-sqlite,pyiceberg-core]==0.12.0",
	"pyiceberg-core==0.10.1",
	"pyarrow==26.0.1",
}

// pyicebergBatchRows is the rows per append.
const pyicebergBatchRows = 1_000_000

// pyicebergScript is run as `python - CSV WAREHOUSE BATCH`; its last stdout
// line is a JSON object with the measurement.
const pyicebergScript = `
import json, sys, time
import pyarrow as pa
import pyarrow.csv as pacsv
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.schema import Schema
from pyiceberg.types import NestedField, StringType, TimestamptzType, LongType
from pyiceberg.partitioning import PartitionSpec, PartitionField
from pyiceberg.transforms import DayTransform

def vm_hwm():
    # Peak resident set of this process's own address space, in bytes.
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0

csv_path, warehouse, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
arrow_schema = pa.schema([
    pa.field("grid_cell_id", pa.string(), nullable=False),
    pa.field("window_start", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("people_count", pa.int64(), nullable=False),
    pa.field("inflow", pa.int64()),
    pa.field("outflow", pa.int64()),
])
t0 = time.perf_counter()
table = pacsv.read_csv(csv_path, convert_options=pacsv.ConvertOptions(
    column_types={f.name: f.type for f in arrow_schema})).cast(arrow_schema)
read_s = time.perf_counter() - t0

catalog = SqlCatalog("bench", uri="sqlite:///" + warehouse + "/catalog.db", warehouse="file://" + warehouse)
catalog.create_namespace("raw")
schema = Schema(
    NestedField(1, "grid_cell_id", StringType(), required=True),
    NestedField(2, "window_start", TimestamptzType(), required=True),
    NestedField(3, "people_count", LongType(), required=True),
    NestedField(4, "inflow", LongType(), required=False),
    NestedField(5, "outflow", LongType(), required=False),
)
spec = PartitionSpec(PartitionField(source_id=2, field_id=1000, transform=DayTransform(), name="window_start_day"))
tbl = catalog.create_table("raw.mobile_signal", schema=schema, partition_spec=spec)

w0, c0 = time.perf_counter(), time.process_time()
for off in range(0, table.num_rows, batch):
    tbl.append(table.slice(off, batch))
wall, cpu = time.perf_counter() - w0, time.process_time() - c0

tbl = catalog.load_table("raw.mobile_signal")
snap = tbl.current_snapshot()
print(json.dumps({
    "rows": table.num_rows,
    "read_s": read_s,
    "append_s": wall,
    "cpu_s": cpu,
    "snapshots": len(tbl.metadata.snapshots),
    "total_records": int(snap.summary["total-records"]),
    "peak_rss_bytes": vm_hwm(),
}))
`

// runPyIcebergAppend appends the rows of csvPath (want of them) with
// pyiceberg in dir and returns the measured appends.
func runPyIcebergAppend(ctx context.Context, dir, csvPath string, want int64) (anchorRun, error) {
	var run anchorRun
	vctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	python, err := testenv.PythonVenv(vctx, "pyiceberg-bench", pyicebergBenchRequirements...)
	cancel()
	if err != nil {
		return run, err
	}
	warehouse := filepath.Join(dir, "pyiceberg")
	if err := os.MkdirAll(warehouse, 0o755); err != nil {
		return run, err
	}
	cmd := exec.CommandContext(ctx, python, "-", csvPath, warehouse, strconv.Itoa(pyicebergBatchRows))
	cmd.Stdin = bytes.NewReader([]byte(pyicebergScript))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return run, fmt.Errorf("pyiceberg: %w: %s\n%s", err, ingestLastLines(stderr.String(), 1), ingestLastLines(stderr.String(), 15))
	}
	var out struct {
		Rows         int64   `json:"rows"`
		ReadS        float64 `json:"read_s"`
		AppendS      float64 `json:"append_s"`
		CPUS         float64 `json:"cpu_s"`
		Snapshots    int     `json:"snapshots"`
		TotalRecords int64   `json:"total_records"`
		PeakRSS      int64   `json:"peak_rss_bytes"`
	}
	if err := json.Unmarshal(lastLine(stdout.Bytes()), &out); err != nil {
		return run, fmt.Errorf("pyiceberg output %q: %w", stdout.String(), err)
	}
	if out.Rows != want || out.TotalRecords != want {
		return run, fmt.Errorf("pyiceberg read %d rows and its table has %d, want %d", out.Rows, out.TotalRecords, want)
	}
	run.Rows = out.Rows
	run.Wall = time.Duration(out.AppendS * float64(time.Second))
	run.Appended = run.Wall
	run.CPU = time.Duration(out.CPUS * float64(time.Second))
	run.PeakRSS = out.PeakRSS
	run.Commits = out.Snapshots
	logf("pyiceberg: read %d rows from CSV in %.1fs (not timed); %d appends in %.2fs wall, %.2fs CPU",
		out.Rows, out.ReadS, out.Snapshots, out.AppendS, out.CPUS)
	return run, nil
}

// ingestLastLines returns the last n lines of s.
func ingestLastLines(s string, n int) string {
	b := bytes.TrimRight([]byte(s), "\n")
	for i, cnt := len(b)-1, 0; i >= 0; i-- {
		if b[i] == '\n' {
			if cnt++; cnt == n {
				return string(b[i+1:])
			}
		}
	}
	return string(b)
}
