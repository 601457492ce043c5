package e2e

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"gopkg.in/yaml.v3"

	"citybrain/connectors"
	"citybrain/connectors/sources"
	"citybrain/internal/broker"
)

// weatherSourceYAML is the built-in weather definition under another name
// (so that tests sharing one real Kafka use their own topics), reading paths.
func weatherSourceYAML(t *testing.T, name string, paths ...string) string {
	t.Helper()
	all, err := sources.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	d := all["weather"]
	d.Name = name
	d.File.Paths = paths
	d.PollInterval = time.Second
	b, err := yaml.Marshal([]sources.Definition{d})
	if err != nil {
		t.Fatal(err)
	}
	return "sources:\n" + indent(string(b), "  ") + disableOthers(name)
}

// disableOthers lists every other built-in source as disabled, so that a
// test's serve runs only its own source.
func disableOthers(keep string) string {
	var b strings.Builder
	for _, n := range sources.Names() {
		if n != keep {
			b.WriteString("  - {name: " + n + ", enabled: false}\n")
		}
	}
	return b.String()
}

func indent(s, pre string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = pre + lines[i]
	}
	return strings.Join(lines, "\n") + "\n"
}

// expectedWeather computes, independently of the platform, the row count and
// the monthly rain totals (Beijing months) of the real CSV.
func expectedWeather(t *testing.T, path string) (rows int, rain map[string]float64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	header, err := r.Read()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[h] = i
	}
	rain = map[string]float64{}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		rows++
		y, _ := strconv.Atoi(rec[col["year"]])
		m, _ := strconv.Atoi(rec[col["month"]])
		key := fmt.Sprintf("%04d-%02d", y, m)
		if v := rec[col["RAIN"]]; v != "NA" {
			x, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("RAIN %q: %v", v, err)
			}
			rain[key] += x
		} else if _, ok := rain[key]; !ok {
			rain[key] = 0
		}
	}
	return rows, rain
}

// withMalformed copies the weather file with two bad lines inserted after
// data line 1000: an unclosed quote and a non-numeric PM2.5. It returns the
// path and the physical line numbers of the bad lines.
func withMalformed(t *testing.T, dir string) (string, []int64) {
	t.Helper()
	b, err := os.ReadFile(weatherCSV())
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	bad := []string{
		"99998,2014,1,1,0,\"4,4,14,20,300,69,-0.7,1023,-18.8,0,\"NNW,4.4,\"Guanyuan\"\n",
		"99999,2014,1,1,0,abc,4,14,20,300,69,-0.7,1023,-18.8,0,\"NNW\",4.4,\"Guanyuan\"\n",
	}
	at := 1001 // after header + 1000 data lines
	out := append(append(append([]string{}, lines[:at]...), bad...), lines[at:]...)
	path := filepath.Join(dir, "guanyuan.csv")
	if err := os.WriteFile(path, []byte(strings.Join(out, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, []int64{int64(at) + 1, int64(at) + 2}
}

func readAll(t *testing.T, brokers []string, topic string) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := broker.NewClient(brokers, broker.DefaultConfig())
	ends, err := c.EndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var out []kafka.Message
	for p, end := range ends {
		if end == 0 {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p, MaxWait: 100 * time.Millisecond})
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, m)
			if m.Offset+1 >= end {
				break
			}
		}
		r.Close()
	}
	return out
}

func header(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// TestWeatherEndToEnd ingests the real Guanyuan file (plus two malformed
// lines) through the file connector, Kafka and the lake writer, and checks
// the lake against figures computed here from the CSV: row count and every
// monthly rain total; the malformed lines are in dlq.<source> with their line
// numbers and reasons. Runs on the embedded broker and on real Apache Kafka.
func TestWeatherEndToEnd(t *testing.T) {
	for _, kind := range []string{"embedded", "kafka"} {
		t.Run("broker="+kind, func(t *testing.T) {
			src := "weather"
			brokerYAML := ""
			if kind == "kafka" {
				src = "weather_e2e_" + strconv.FormatInt(time.Now().UnixNano(), 36)
				brokerYAML = fmt.Sprintf("broker: {bootstrap: [%q]}\n", realKafka(t))
			}
			dir := t.TempDir()
			path, badLines := withMalformed(t, dir)
			cfg := weatherSourceYAML(t, src, path)
			e := newEnv(t, cfg)
			if brokerYAML != "" {
				// The later broker key wins over newEnv's embedded default.
				b, _ := os.ReadFile(e.config)
				os.WriteFile(e.config, []byte(strings.Replace(string(b), "broker: {embedded_port: 0}\n", brokerYAML, 1)), 0o644)
			}
			out := e.run("ingest", src, "--no-progress")
			if !strings.Contains(out, "2 rejects") {
				t.Errorf("ingest output does not report 2 rejects:\n%s", out)
			}
			wantRows, wantRain := expectedWeather(t, weatherCSV())
			if wantRows != 35064 {
				t.Fatalf("independent count of the CSV = %d, want 35064", wantRows)
			}
			if got := e.sqlInt("select count(*) from raw.weather"); got != int64(wantRows) {
				t.Fatalf("citybrain sql count = %d, want %d", got, wantRows)
			}
			rows := e.sqlRows(`select strftime(timezone('Asia/Shanghai', observed_at), '%Y-%m') as month, coalesce(sum(rain_mm), 0) from raw.weather group by 1 order by 1`)
			if len(rows) != len(wantRain) {
				t.Fatalf("months: got %d, want %d", len(rows), len(wantRain))
			}
			var months []string
			for _, r := range rows {
				got, _ := strconv.ParseFloat(r[1], 64)
				if want, ok := wantRain[r[0]]; !ok || math.Abs(got-want) > 1e-6 {
					t.Errorf("rain in %s: lake %.4f, CSV %.4f", r[0], got, want)
				}
				months = append(months, r[0])
			}
			sort.Strings(months)
			t.Logf("%d rows; %d monthly rain totals match (%s … %s)", wantRows, len(rows), months[0], months[len(months)-1])

			// The dead letters, with line numbers and reasons.
			var brokers []string
			var emb *broker.Embedded
			if kind == "kafka" {
				brokers = []string{realKafka(t)}
			} else {
				var err error
				if emb, err = broker.StartEmbedded(e.dataDir(), 0, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
					t.Fatal(err)
				}
				brokers = []string{emb.Addr()}
			}
			dead := readAll(t, brokers, connectors.DLQTopic(src))
			if emb != nil {
				// One process at a time owns the embedded broker's log: let
				// the next citybrain command have it.
				emb.Close()
			}
			if len(dead) != 2 {
				t.Fatalf("dlq.%s has %d records, want 2", src, len(dead))
			}
			for i, m := range dead {
				cur, _ := connectors.ParseCursor(header(m, connectors.HeaderCursor))
				reason := header(m, connectors.HeaderReason)
				if cur.Pos != badLines[i] || !strings.Contains(reason, fmt.Sprintf("line %d", badLines[i])) {
					t.Errorf("dead letter %d: cursor %v reason %q, want line %d", i, cur, reason, badLines[i])
				}
				if !strings.HasPrefix(string(m.Value), "9999") {
					t.Errorf("dead letter %d: raw bytes %q are not the original line", i, m.Value)
				}
				t.Logf("dlq: %s — %s", header(m, connectors.HeaderCursor), reason)
			}
			if !strings.Contains(header(dead[1], connectors.HeaderReason), "pm25") {
				t.Errorf("reason for the bad PM2.5 does not name the field: %q", header(dead[1], connectors.HeaderReason))
			}
			// A second ingest reads nothing new and duplicates nothing.
			e.run("ingest", src, "--no-progress")
			if got := e.sqlInt("select count(*) from raw.weather"); got != int64(wantRows) {
				t.Fatalf("after a second ingest count = %d, want %d", got, wantRows)
			}
		})
	}
}
