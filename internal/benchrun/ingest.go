package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"citybrain/connectors"
	"citybrain/internal/testenv"
)

// The ingest suite: end to end, as an operator runs it — `citybrain ingest
// <source>` (the real binary, built from this tree) reads a mobile_signal
// CSV through connectors/file and the source's mapping, produces the
// records to raw.<source> (embedded broker inside the citybrain process, or
// real Apache Kafka), then its lake writer commits the topic into the
// Iceberg table raw.mobile_signal; the process exits when the commit is
// done. The lake is then checked with DuckDB (count(*) = count(distinct
// _cursor) = rows).
//
// Data: Xicheng's 5-minute grid counts, ingestCells cells × 288 windows per
// day, time-major (every cell of a window, then the next window) as an
// operator's feed delivers them; scale S is S days (scale 1 ≈ 234k rows).
// Counts follow a fixed per-cell base and a day curve with noise from
// math/rand/v2 PCG seeded (2026, 11): the same scale always gives the same
// bytes.
//
// On real Kafka, at -ingest-anchor-scale, the topic the connector filled is
// then read by three writers, each into its own lake/warehouse: ours
// (`citybrain ingest` of the same source in a fresh data directory with an
// empty file, so it produces nothing and its lake writer writes the whole
// topic), Apache Iceberg's Kafka Connect sink (anchors_kafkaconnect.go),
// and, for the write alone, pyiceberg appending the same rows from Arrow
// (anchors_pyiceberg.go).

// ingestCells is the number of Xicheng grid cells in the feed.
const ingestCells = 811

// ingestWindowsPerDay is 24 h of 5-minute windows.
const ingestWindowsPerDay = 288

var (
	ingestScalesFlag  = flag.String("ingest-scales", "1,10,100", "ingest suite: scales to run (scale S = S days of Xicheng 5-min grid counts, 811 × 288 × S rows; see -ingest-max-rows)")
	ingestBrokersFlag = flag.String("ingest-brokers", "embedded,kafka", "ingest suite: broker kinds (embedded, kafka)")
	ingestAnchorScale = flag.Int("ingest-anchor-scale", 10, "ingest suite: the scale whose topic the anchors (Iceberg Kafka Connect sink, pyiceberg) read; 0 runs no anchor")
	ingestMaxRows     = flag.Int("ingest-max-rows", 10_000_000, "ingest suite: cap on a scale's rows (whole days), to keep make bench bounded; 0 = no cap")
)

func init() {
	registerSuite(Suite{
		Name: "ingest",
		Doc: "End to end as an operator runs it: `citybrain ingest <source>` (the binary built from this tree, in its own process) reads a mobile_signal CSV " +
			"(Xicheng 5-minute grid counts: 811 cells × 288 windows per day, scale S = S days, time-major; deterministic) through connectors/file and the mapping, " +
			"produces the records to raw.<source> on the embedded broker (inside the citybrain process) or real Apache Kafka " + testenv.KafkaVersion +
			", and its lake writer commits them to raw.mobile_signal; the lake is then checked with DuckDB (count(*) = count(distinct _cursor) = rows). " +
			"rows/s = rows / process wall time (start to exit); rows/s per core = rows / the process's CPU time (user+sys; with the embedded broker it includes the broker, with real Kafka the broker's JVM is not counted); " +
			"MB/s = CSV bytes / wall; peak RSS of the citybrain process. Scale 100 (23.4M rows) is capped at -ingest-max-rows (default 10M rows = 42 days) to keep `make bench` under 20 minutes on 2 cores; the row count shown is what ran. " +
			"Anchors, on real Kafka at scale 10: the topic the connector filled is read again, each into its own fresh lake, by ours (the same `citybrain ingest` with an empty file: it produces nothing and its lake writer writes the topic) " +
			"and by Apache Iceberg's Kafka Connect sink (org.apache.iceberg:iceberg-kafka-connect " + testenv.IcebergConnectVersion + " in a Kafka Connect " + testenv.KafkaVersion + " standalone worker, both from Maven Central; HadoopCatalog in a local directory, " +
			"table auto-created partitioned by day(window_start), window_start made a timestamp by Kafka Connect's TimestampConverter, commit interval 2 s; timed from starting the JVM to the snapshot holding every row, JVM start-up included); ratio = ours / theirs in rows/s. " +
			"pyiceberg 0.12.0: the same rows from the CSV as an Arrow table (read not timed), appended in 1M-row batches into a SqlCatalog (SQLite) table of the same schema and partitioning; only the appends are timed; ratio = our topic→lake rows/s / pyiceberg's append rows/s.",
		Reproduce: "go run ./internal/benchrun -suite ingest                           # scales 1, 10, 100 (capped at 10M rows), embedded and real Kafka, anchors at scale 10\n" +
			"go run ./internal/benchrun -suite ingest -ingest-scales 1 -ingest-brokers kafka -ingest-anchor-scale 1   # smaller\n" +
			"go test -run TestIcebergKafkaConnectAnchor -v ./internal/benchrun/    # the Kafka Connect anchor alone on 10k rows",
		Run: runIngest,
	})
}

// ingestRows is the row count of a scale (whole days, capped by -ingest-max-rows).
func ingestRows(scale int) (rows, days int) {
	days = scale
	perDay := ingestCells * ingestWindowsPerDay
	if limit := *ingestMaxRows; limit > 0 && days*perDay > limit {
		days = max(limit/perDay, 1)
	}
	return days * perDay, days
}

func runIngest(ctx context.Context, tmp string) []Result {
	var scales []int
	for _, f := range strings.Split(*ingestScalesFlag, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		s, err := strconv.Atoi(f)
		if err != nil || s < 1 {
			return []Result{{Name: "ingest", Status: "failed", Reason: fmt.Sprintf("-ingest-scales: %q is not a positive integer", f)}}
		}
		scales = append(scales, s)
	}
	bin, err := citybrainBinary(ctx, tmp)
	if err != nil {
		return []Result{{Name: "ingest", Status: "failed", Reason: err.Error()}}
	}
	// The CSV of each scale, written once and read by every broker kind.
	csvs := map[int]string{}
	sizes := map[int]int64{}
	for _, s := range append(append([]int(nil), scales...), *ingestAnchorScale) {
		if s < 1 || csvs[s] != "" {
			continue
		}
		rows, days := ingestRows(s)
		path := filepath.Join(tmp, fmt.Sprintf("mobile_signal_s%d.csv", s))
		size, err := writeIngestCSV(path, days)
		if err != nil {
			return []Result{{Name: "ingest", Status: "failed", Reason: err.Error()}}
		}
		logf("ingest: scale %d: %s, %d rows (%d days), %.1f MB", s, path, rows, days, float64(size)/1e6)
		csvs[s], sizes[s] = path, size
	}
	empty := filepath.Join(tmp, "empty.csv")
	if err := os.WriteFile(empty, []byte("grid_cell_id,window_start,people_count,inflow,outflow\n"), 0o644); err != nil {
		return []Result{{Name: "ingest", Status: "failed", Reason: err.Error()}}
	}

	var out []Result
	for _, kind := range strings.Split(*ingestBrokersFlag, ",") {
		kind = strings.TrimSpace(kind)
		if kind == "" || ctx.Err() != nil {
			continue
		}
		var bootstrap string
		if kind == "kafka" {
			if _, err := exec.LookPath("java"); err != nil {
				for _, s := range scales {
					out = append(out, Result{Name: fmt.Sprintf("ingest/kafka/scale%d", s), Broker: kind, Unit: "rows/s", Status: "skipped",
						Reason: "java not found: real Kafka needs Java 17 (and Maven for its jars); run `make test-deps`"})
				}
				out = append(out, skippedAnchors("java not found: the anchors read real Kafka (Java 17 + Maven); run `make test-deps`")...)
				continue
			}
			sctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
			k, err := testenv.StartKafka(sctx, filepath.Join(tmp, "kafka"))
			cancel()
			if err != nil {
				for _, s := range scales {
					out = append(out, Result{Name: fmt.Sprintf("ingest/kafka/scale%d", s), Broker: kind, Unit: "rows/s", Status: "skipped",
						Reason: "real Kafka did not start: " + firstLine(err.Error())})
				}
				out = append(out, skippedAnchors("real Kafka did not start: "+firstLine(err.Error()))...)
				continue
			}
			defer k.Stop()
			bootstrap = k.Bootstrap()
		} else if kind != "embedded" {
			out = append(out, Result{Name: "ingest/" + kind, Status: "failed", Reason: fmt.Sprintf("unknown broker kind %q (want embedded or kafka)", kind)})
			continue
		}
		for _, s := range scales {
			if ctx.Err() != nil {
				break
			}
			rows, _ := ingestRows(s)
			source := fmt.Sprintf("signal_s%d", s)
			name := fmt.Sprintf("ingest/%s/scale%d", kind, s)
			logf("=== %s: %d rows", name, rows)
			r := Result{Name: name, Broker: kind, Transport: "file/csv", Unit: "rows/s", Rows: int64(rows), InputBytes: sizes[s]}
			run, err := runIngestOnce(ctx, bin, filepath.Join(tmp, fmt.Sprintf("%s-s%d", kind, s)), bootstrap, source, csvs[s], int64(rows), int64(rows))
			if err != nil {
				r.Status, r.Reason = "failed", err.Error()
				logf("=== %s: failed: %v", name, err)
				out = append(out, r)
				continue
			}
			r.Status = "ok"
			r.WallS, r.CPUS = run.Wall.Seconds(), run.CPU.Seconds()
			r.RowsPerS = float64(rows) / r.WallS
			r.RowsPerCoreS = float64(rows) / r.CPUS
			r.MBPerS = float64(sizes[s]) / r.WallS / 1e6
			r.PeakRSSMB = float64(run.PeakRSS) / (1 << 20)
			r.Figure = r.RowsPerS
			if run.Produce > 0 {
				r.ProduceRowsPS = float64(rows) / run.Produce.Seconds()
			}
			r.Reason = fmt.Sprintf("%s rows/s per core, %.1f MB/s, peak RSS %.0f MiB; wall %.1f s (file→Kafka %.1f s), CPU %.1f s",
				num(r.RowsPerCoreS), r.MBPerS, r.PeakRSSMB, r.WallS, run.Produce.Seconds(), r.CPUS)
			switch {
			case *ingestAnchorScale <= 0:
				r.Reason += "; no anchor: disabled with -ingest-anchor-scale 0"
			case s != *ingestAnchorScale:
				r.Reason += fmt.Sprintf("; no anchor at this scale: the anchors run once, at scale %d, to keep make bench bounded", *ingestAnchorScale)
			}
			logf("%s: %d rows in %.2fs wall, %.2fs CPU: %s rows/s, %s rows/s per core, %.1f MB/s, peak RSS %.0f MiB",
				name, rows, r.WallS, r.CPUS, num(r.RowsPerS), num(r.RowsPerCoreS), r.MBPerS, r.PeakRSSMB)
			out = append(out, r)
		}
		if kind == "kafka" && *ingestAnchorScale > 0 && ctx.Err() == nil {
			filled := false
			for _, s := range scales {
				filled = filled || s == *ingestAnchorScale
			}
			anchors := runIngestAnchors(ctx, bin, tmp, bootstrap, *ingestAnchorScale, csvs[*ingestAnchorScale], empty, filled)
			// The end-to-end rows at the anchor scale also get the Kafka
			// Connect sink's figure: ours does file→Kafka→lake, theirs only
			// Kafka→lake.
			kc := anchors[0]
			for i := range out {
				if out[i].Status != "ok" || out[i].Name != fmt.Sprintf("ingest/%s/scale%d", out[i].Broker, *ingestAnchorScale) {
					continue
				}
				if kc.Status == "ok" && kc.Anchor != nil {
					a := *kc.Anchor
					a.Ratio = out[i].RowsPerS / a.Figure
					out[i].Anchor = &a
					out[i].Reason += "; anchor: Iceberg's sink doing only Kafka→lake (this scale's topic on real Kafka), ours here file→Kafka→lake"
				} else {
					out[i].Reason += "; anchor: " + kc.Reason
				}
			}
			out = append(out, anchors...)
		}
	}
	return out
}

// skippedAnchors are the anchor results when they cannot run.
func skippedAnchors(reason string) []Result {
	if *ingestAnchorScale <= 0 {
		return nil
	}
	rows, _ := ingestRows(*ingestAnchorScale)
	return []Result{
		{Name: fmt.Sprintf("ingest/kafka/vs-iceberg-kafka-connect/scale%d", *ingestAnchorScale), Broker: "kafka", Unit: "rows/s", Rows: int64(rows), Status: "skipped", Reason: reason},
		{Name: fmt.Sprintf("ingest/vs-pyiceberg-append/scale%d", *ingestAnchorScale), Unit: "rows/s", Rows: int64(rows), Status: "skipped", Reason: reason},
	}
}

// runIngestAnchors compares our topic→lake stage with the anchors on the
// topic of scale (filled by the connector when that scale ran above, else
// now).
func runIngestAnchors(ctx context.Context, bin, tmp, bootstrap string, scale int, csvPath, empty string, filled bool) []Result {
	rows, _ := ingestRows(scale)
	source := fmt.Sprintf("signal_s%d", scale)
	topic := connectors.RawTopic(source)
	oursName := fmt.Sprintf("ingest/kafka/topic→lake/scale%d", scale)
	kcName := fmt.Sprintf("ingest/kafka/vs-iceberg-kafka-connect/scale%d", scale)
	pyName := fmt.Sprintf("ingest/vs-pyiceberg-append/scale%d", scale)
	skipAll := skippedAnchors
	// Fill the topic when -ingest-scales did not include the scale.
	if !filled {
		if _, err := runIngestOnce(ctx, bin, filepath.Join(tmp, fmt.Sprintf("kafka-s%d", scale)), bootstrap, source, csvPath, int64(rows), int64(rows)); err != nil {
			return skipAll("filling the topic failed: " + err.Error())
		}
	}
	logf("=== %s: our lake writer on %s (%d rows), fresh lake", oursName, topic, rows)
	ours, err := runIngestOnce(ctx, bin, filepath.Join(tmp, fmt.Sprintf("kafka-s%d-writer", scale)), bootstrap, source, empty, int64(rows), 0)
	if err != nil {
		return skipAll("our topic→lake run failed: " + err.Error())
	}
	oursPS := float64(rows) / ours.Wall.Seconds()
	oursNote := fmt.Sprintf("ours: %s rows/s per core, peak RSS %.0f MiB, wall %.1f s", num(float64(rows)/ours.CPU.Seconds()), float64(ours.PeakRSS)/(1<<20), ours.Wall.Seconds())
	logf("ours (topic→lake): %d rows in %.2fs wall, %.2fs CPU: %s rows/s", rows, ours.Wall.Seconds(), ours.CPU.Seconds(), num(oursPS))

	var out []Result
	// Apache Iceberg's Kafka Connect sink on the same topic and broker.
	kc := Result{Name: kcName, Broker: "kafka", Unit: "rows/s", Rows: int64(rows), Figure: oursPS, RowsPerS: oursPS,
		RowsPerCoreS: float64(rows) / ours.CPU.Seconds(), PeakRSSMB: float64(ours.PeakRSS) / (1 << 20), WallS: ours.Wall.Seconds(), CPUS: ours.CPU.Seconds()}
	logf("=== %s", kcName)
	timeout := max(5*time.Minute, time.Duration(rows/5_000)*time.Second)
	run, err := runIcebergKafkaConnect(ctx, filepath.Join(tmp, "iceberg-kafka-connect"), bootstrap, topic, int64(rows), timeout)
	if err != nil {
		kc.Status, kc.Reason = "skipped", "Apache Iceberg Kafka Connect sink could not run here: "+anchorReason(err)
		logf("=== %s: %s\n%v", kcName, kc.Reason, err)
	} else {
		kc.Status = "ok"
		kc.Anchor = &Anchor{Name: fmt.Sprintf("Apache Iceberg Kafka Connect sink %s (Kafka Connect %s standalone)", testenv.IcebergConnectVersion, testenv.KafkaVersion),
			Figure: run.rowsPerS(), Unit: "rows/s", Ratio: oursPS / run.rowsPerS(), RowsPerS: run.rowsPerS()}
		kc.Reason = fmt.Sprintf("topic→lake, same topic and broker; %s; theirs: %s rows/s per core, peak RSS %.0f MiB, wall %.1f s incl. %.1f s JVM/connector start-up (after start-up: %s rows/s), %d snapshots",
			oursNote, num(run.rowsPerCoreS()), float64(run.PeakRSS)/(1<<20), run.Wall.Seconds(), run.Startup.Seconds(),
			num(float64(run.Rows)/(run.Wall-run.Startup).Seconds()), run.Commits)
		logf("Iceberg Kafka Connect sink: %d rows in %.2fs (start-up %.1fs), %.2fs CPU, peak RSS %.0f MiB: %s rows/s → ours/theirs %.2f×",
			run.Rows, run.Wall.Seconds(), run.Startup.Seconds(), run.CPU.Seconds(), float64(run.PeakRSS)/(1<<20), num(run.rowsPerS()), kc.Anchor.Ratio)
	}
	out = append(out, kc)

	// pyiceberg appending the same rows.
	py := kc
	py.Name, py.Broker, py.Anchor = pyName, "", nil
	logf("=== %s", pyName)
	prun, err := runPyIcebergAppend(ctx, filepath.Join(tmp, "pyiceberg"), csvPath, int64(rows))
	if err != nil {
		py.Status, py.Reason = "skipped", "pyiceberg could not run here: "+anchorReason(err)
		logf("=== %s: %s\n%v", pyName, py.Reason, err)
	} else {
		py.Status = "ok"
		py.Anchor = &Anchor{Name: "pyiceberg 0.12.0 append (Arrow, SqlCatalog/SQLite)", Figure: prun.rowsPerS(), Unit: "rows/s",
			Ratio: oursPS / prun.rowsPerS(), RowsPerS: prun.rowsPerS()}
		py.Reason = fmt.Sprintf("ours = topic→lake above; theirs: appends only (CSV→Arrow not timed), %d appends of ≤1M rows, %s rows/s per core, %.1f s",
			prun.Commits, num(prun.rowsPerCoreS()), prun.Wall.Seconds())
		logf("pyiceberg: %s rows/s → ours/pyiceberg %.2f×", num(prun.rowsPerS()), py.Anchor.Ratio)
	}
	return append(out, py)
}

// anchorReason is an anchor's error for the table: its first line and,
// from a Java stack trace, the last "Caused by" line (the root cause).
func anchorReason(err error) string {
	msg := err.Error()
	reason := firstLine(msg)
	for _, l := range strings.Split(msg, "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "Caused by") {
			reason = firstLine(msg) + " — " + l
		}
	}
	return reason
}

// ingestRun is one `citybrain ingest` process.
type ingestRun struct {
	Wall, CPU time.Duration
	Produce   time.Duration // the connector phase, as the command reports it
	Produced  int64
	PeakRSS   int64
}

var (
	producedRE = regexp.MustCompile(`produced \S+ (\d+) records to \S+, (\d+) rejects to \S+ in (\S+)`)
	lakeRowsRE = regexp.MustCompile(`has (\d+) rows at snapshot`)
)

// runIngestOnce runs `citybrain ingest source` with a config whose source
// reads csvPath, in the fresh data directory dir, on bootstrap (real Kafka)
// or the embedded broker (""). wantProduced is the records the connector
// must produce (-1: any); lakeRows the rows the lake must then hold, checked
// by the command's report and with DuckDB.
func runIngestOnce(ctx context.Context, bin, dir, bootstrap, source, csvPath string, lakeRows, wantProduced int64) (ingestRun, error) {
	var run ingestRun
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return run, err
	}
	cfg := filepath.Join(dir, "citybrain.yaml")
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by benchrun's ingest suite.\nlog: {level: warn}\nbroker:\n  embedded_port: 0\n")
	if bootstrap != "" {
		fmt.Fprintf(&b, "  bootstrap: [%q]\n", bootstrap)
	}
	fmt.Fprintf(&b, `sources:
  - name: %s
    schema: mobile_signal
    transport: file
    file: {paths: [%q], header: true}
    mapping:
      timezone: Asia/Shanghai
      fields:
        grid_cell_id: {column: grid_cell_id}
        window_start: {column: window_start}
        people_count: {column: people_count}
        inflow:       {column: inflow}
        outflow:      {column: outflow}
`, source, csvPath)
	if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
		return run, err
	}
	data := filepath.Join(dir, "data")
	cmd := exec.CommandContext(ctx, bin, "--config", cfg, "--data-dir", data, "ingest", source, "--no-progress")
	cmd.Dir = dir
	cmd.Env = ingestCleanEnv()
	var stdout strings.Builder
	var stderr ingestTailBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return run, fmt.Errorf("citybrain ingest %s: %w", source, err)
	}
	stopRSS := watchPeakRSS(cmd.Process.Pid)
	err := cmd.Wait()
	run.Wall = time.Since(start)
	run.PeakRSS = stopRSS()
	if err != nil {
		return run, fmt.Errorf("citybrain ingest %s: %v: %s", source, err, strings.ReplaceAll(strings.TrimSpace(stderr.String()), "\n", " · "))
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		run.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	m := producedRE.FindStringSubmatch(stdout.String())
	if m == nil {
		return run, fmt.Errorf("citybrain ingest %s: no \"produced … records\" line in its output %q", source, stdout.String())
	}
	run.Produced, _ = strconv.ParseInt(m[1], 10, 64)
	if rej, _ := strconv.ParseInt(m[2], 10, 64); rej != 0 {
		return run, fmt.Errorf("citybrain ingest %s: %d rejects, want none", source, rej)
	}
	run.Produce, _ = time.ParseDuration(m[3])
	if wantProduced >= 0 && run.Produced != wantProduced {
		return run, fmt.Errorf("citybrain ingest %s produced %d records, want %d", source, run.Produced, wantProduced)
	}
	lm := lakeRowsRE.FindStringSubmatch(stdout.String())
	if lm == nil {
		return run, fmt.Errorf("citybrain ingest %s: no lake report in its output %q", source, stdout.String())
	}
	if n, _ := strconv.ParseInt(lm[1], 10, 64); n != lakeRows {
		return run, fmt.Errorf("citybrain ingest %s: the lake has %d rows, want %d", source, n, lakeRows)
	}
	if err := verify(ctx, data, lakeRows, lakeRows); err != nil {
		return run, fmt.Errorf("verification: %w", err)
	}
	return run, nil
}

// ingestCleanEnv is the environment without the variables that would point the
// command at another data directory or broker.
func ingestCleanEnv() []string {
	var env []string
	for _, e := range os.Environ() {
		if strings.HasPrefix(e, "CITYBRAIN_DATA_DIR=") || strings.HasPrefix(e, "CITYBRAIN_KAFKA_BOOTSTRAP=") {
			continue
		}
		env = append(env, e)
	}
	return env
}

// ingestTailBuffer keeps the last 4 KiB written to it.
type ingestTailBuffer struct{ b []byte }

func (t *ingestTailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 4096 {
		t.b = append([]byte(nil), t.b[len(t.b)-4096:]...)
	}
	return len(p), nil
}

func (t *ingestTailBuffer) String() string { return string(t.b) }

// citybrainBinary builds ./cmd/citybrain into tmp (so the benchmark runs
// this tree's code; quick when the build cache is warm), falling back to
// bin/citybrain (what `make bench` builds) when go is not at hand.
func citybrainBinary(ctx context.Context, tmp string) (string, error) {
	out := filepath.Join(tmp, "citybrain")
	if gobin, err := exec.LookPath("go"); err == nil {
		cmd := exec.CommandContext(ctx, gobin, "build", "-o", out, "./cmd/citybrain")
		msg, err := cmd.CombinedOutput()
		if err == nil {
			return out, nil
		}
		logf("ingest: go build ./cmd/citybrain failed (%v): %s", err, ingestLastLines(string(msg), 5))
	}
	if st, err := os.Stat(filepath.Join("bin", "citybrain")); err == nil && !st.IsDir() {
		abs, _ := filepath.Abs(filepath.Join("bin", "citybrain"))
		logf("ingest: using %s", abs)
		return abs, nil
	}
	return "", errors.New("no citybrain binary: run `make build` (or `make bench`) from the repository root")
}

// writeIngestCSV writes days of Xicheng 5-minute grid counts with a header
// and returns the file's size.
func writeIngestCSV(path string, days int) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	rng := rand.New(rand.NewPCG(2026, 11))
	base := make([]int, ingestCells)
	cells := make([]string, ingestCells)
	for c := range base {
		base[c] = 200 + rng.IntN(2800)
		cells[c] = fmt.Sprintf("XC-G%04d", c+1)
	}
	// The day curve in permille per hour: quiet at night, peaks at 9 and 18.
	curve := [24]int{300, 250, 220, 200, 210, 280, 450, 700, 900, 1000, 950, 900, 920, 900, 880, 900, 950, 1000, 980, 850, 700, 550, 450, 350}
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.FixedZone("CST", 8*3600))
	size, _ := w.WriteString("grid_cell_id,window_start,people_count,inflow,outflow\n")
	n := int64(size)
	var line []byte
	for d := 0; d < days; d++ {
		for win := 0; win < ingestWindowsPerDay; win++ {
			ts := start.Add(time.Duration(d*ingestWindowsPerDay+win) * 5 * time.Minute)
			var tsb [32]byte
			tss := ts.AppendFormat(tsb[:0], time.RFC3339)
			h := win / 12
			for c := 0; c < ingestCells; c++ {
				people := base[c]*curve[h]/1000 + rng.IntN(base[c]/10+1)
				flow := people / 20
				line = append(line[:0], cells[c]...)
				line = append(line, ',')
				line = append(line, tss...)
				line = append(line, ',')
				line = strconv.AppendInt(line, int64(people), 10)
				line = append(line, ',')
				line = strconv.AppendInt(line, int64(rng.IntN(flow+1)), 10)
				line = append(line, ',')
				line = strconv.AppendInt(line, int64(rng.IntN(flow+1)), 10)
				line = append(line, '\n')
				k, err := w.Write(line)
				if err != nil {
					f.Close()
					return 0, err
				}
				n += int64(k)
			}
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return 0, err
	}
	return n, f.Close()
}
