package e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/segmentio/kafka-go"
	"gopkg.in/yaml.v3"

	"citybrain/connectors/sources"
	"citybrain/internal/broker"
	"citybrain/internal/config"
	"citybrain/internal/testenv"
	"citybrain/pipelines/warnings"
	"citybrain/schemas"
	"citybrain/warehouse"
)

// TestWarningsFailover is issue #23's failover test: the partitioned warning
// engine (docs/roles.md) on real Apache Kafka with 6 partitions and 3
// instances (serve --roles warnings), the lake on the SQL catalog in
// PostgreSQL. A surge rises over cells spread across every partition and a
// venue made of one cell of each; one instance is killed with SIGKILL while
// it rises: its units move to the other two within the session timeout's
// reach, restored from their checkpoints; the instance restarts and the
// units are shared by three again. marts.warnings then holds every warning
// the single engine raises on the same input — same subject, raised at the
// same interval, same highest level, cleared at the same interval — once: no
// transition twice, no sequence number twice; the venue was warned before
// its peak.
func TestWarningsFailover(t *testing.T) {
	bootstrap := realKafka(t)
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	pgDir, err := os.MkdirTemp("", "cbpg-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(pgDir)
	pg, err := testenv.StartPostgres(ctx, pgDir)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Stop()
	t.Setenv("CITYBRAIN_CATALOG_DSN", pg.DSN())

	const parts = 6
	src := "msfo_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	topic := "raw." + src
	lakeDir := filepath.Join(t.TempDir(), "lake")
	all, err := sources.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	d := all["mobile_signal"]
	d.Name = src // disabled: the test produces the feed itself
	b, err := yaml.Marshal([]sources.Definition{d})
	if err != nil {
		t.Fatal(err)
	}
	srcYAML := "sources:\n" + indent(string(b), "  ") + disableOthers(src)
	mk := func() *env {
		e := newEnv(t, srcYAML+"warnings: {partitioned: true, checkpoint_every: 1s, session_timeout: 6s}\n")
		e.replace("broker: {embedded_port: 0}\n", fmt.Sprintf("broker: {bootstrap: [%q], partitions: %d}\n", bootstrap, parts))
		e.replace("warehouse:\n", fmt.Sprintf("warehouse:\n  dir: %q\n  catalog: sql\n  sql: {driver: postgres}\n", lakeDir))
		return e
	}
	envs := []*env{mk(), mk(), mk()}
	cfg, err := config.Load(envs[0].config, false)
	if err != nil {
		t.Fatal(err)
	}

	// The reference data in the lake: 8 cells in each partition (1,000 m²),
	// venue fo-VA over the first cell of each partition.
	cells := map[int][]string{}
	ps := []int{0, 1, 2, 3, 4, 5}
	for i := 0; minCells(cells, parts) < 8; i++ {
		id := fmt.Sprintf("fo-c%03d", i)
		p := (&kafka.Hash{}).Balance(kafka.Message{Key: []byte(id)}, ps...)
		cells[p] = append(cells[p], id)
	}
	reg, err := schemas.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var ref warnings.Reference
	var gridRecs, venueCellRecs []schemas.Record
	for p := 0; p < parts; p++ {
		for _, c := range cells[p] {
			gridRecs = append(gridRecs, record(reg, "grid_cells", map[string]any{"grid_cell_id": c, "updated_at": at, "street_code": "110102001",
				"center_longitude": 116.37, "center_latitude": 39.91, "area_m2": 1000.0}))
			ref.GridCells = append(ref.GridCells, warnings.GridCell{ID: c, StreetCode: "110102001", AreaM2: 1000})
		}
		venueCellRecs = append(venueCellRecs, record(reg, "venue_cells", map[string]any{"venue_id": "fo-VA", "grid_cell_id": cells[p][0], "updated_at": at, "share": 1.0}))
		ref.VenueCells = append(ref.VenueCells, warnings.VenueCell{VenueID: "fo-VA", GridCellID: cells[p][0], Share: 1})
	}
	venue := warnings.Venue{ID: "fo-VA", NameZh: "故障转移测试广场", NameEn: "Failover square", Kind: "commercial_district", Capacity: 6000, AreaM2: 30000, StreetCode: "110102001", Responsible: "xc-office"}
	ref.Venues = []warnings.Venue{venue}
	lake, err := warehouse.Open(ctx, cfg.Warehouse, cfg.DataDir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	writeTable(t, ctx, lake, reg, "grid_cells", gridRecs)
	writeTable(t, ctx, lake, reg, "venues", []schemas.Record{record(reg, "venues", map[string]any{"venue_id": venue.ID, "updated_at": at,
		"name_zh": venue.NameZh, "name_en": venue.NameEn, "kind": venue.Kind, "capacity_people": venue.Capacity, "area_m2": venue.AreaM2,
		"street_code": venue.StreetCode, "responsible_unit": venue.Responsible})})
	writeTable(t, ctx, lake, reg, "venue_cells", venueCellRecs)
	lake.Close()

	bcfg := broker.DefaultConfig()
	bcfg.Partitions = parts
	client := broker.NewClient([]string{bootstrap}, bcfg)
	if err := client.EnsureTopics(ctx, topic); err != nil {
		t.Fatal(err)
	}

	// The feed: 30 five-minute intervals; every cell 20 people, the venue's
	// cells and the third cell of each partition rising to 3,620 at interval
	// 16 and falling back.
	const intervals, peak = 30, 16
	t0 := time.Date(2026, 12, 5, 2, 0, 0, 0, time.UTC)
	people := func(i int) int64 {
		switch {
		case i < 4 || i > 28:
			return 20
		case i <= peak:
			return 20 + int64(i-4)*300
		}
		return 20 + int64(28-i)*300
	}
	feed := func(i int) []schemas.Record {
		var recs []schemas.Record
		for p := 0; p < parts; p++ {
			for j, c := range cells[p] {
				n := int64(20)
				if j == 0 || j == 2 {
					n = people(i)
				}
				recs = append(recs, schemas.Record{c, t0.Add(time.Duration(i) * 5 * time.Minute), n, nil, nil})
			}
		}
		return recs
	}

	// The single engine on the same input, interval by interval.
	single, err := warnings.Open(ctx, cfg.Warnings, "", reg, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer single.Close()
	if err := single.LoadReference(ctx, ref); err != nil {
		t.Fatal(err)
	}
	var ts []warnings.Transition
	for i := 0; i < intervals; i++ {
		out, err := single.Process(ctx, warnings.Batch{Records: map[string][]schemas.Record{"mobile_signal": feed(i)}})
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, out...)
	}
	want := warningSummaries(ts)
	if !strings.Contains(strings.Join(want, "\n"), "mobile_signal.crowd_venue fo-VA") || len(want) < 13 {
		t.Fatalf("the single engine should warn of the venue and 12 cells:\n%s", strings.Join(want, "\n"))
	}

	// Three instances share the 7 units (6 cell units and the district unit).
	servers := make([]*server, 3)
	for i, e := range envs {
		servers[i] = e.serveWith(fmt.Sprintf("w%d.log", i+1), "--roles", "warnings", "--instance", fmt.Sprintf("w%d", i+1))
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, s := range servers {
				t.Logf("%s:\n%s", s.log, s.logTail())
			}
		}
	})
	waitFor(t, "the 3 instances to share the 7 units", 3*time.Minute, func() (bool, string) {
		u := ownedUnits(servers, time.Time{})
		return len(u) == 3 && unionUnits(u) == parts+1, fmt.Sprint(u)
	})
	w := client.Writer(topic)
	defer w.Close()
	ms, _ := reg.Get("mobile_signal")
	send := func(i int) {
		var msgs []kafka.Message
		for _, r := range feed(i) {
			msgs = append(msgs, kafka.Message{Key: []byte(r[0].(string)), Value: ms.Encode(nil, r)})
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
	}
	var killed, restarted time.Time
	for i := 0; i < intervals; i++ {
		send(i)
		switch i {
		case 10: // the surge rising: kill -9 the instance owning the district unit if it is w2 or w3, else w2
			victim := 1
			killed = time.Now()
			servers[victim].kill()
			waitFor(t, "w1 and w3 to own every unit", 2*time.Minute, func() (bool, string) {
				u := ownedUnits([]*server{servers[0], servers[2]}, killed)
				return len(u) == 2 && unionUnits(u) == parts+1, fmt.Sprint(u)
			})
			moved := lastOwnership([]*server{servers[0], servers[2]}, killed).Sub(killed)
			t.Logf("w2 killed at interval %d; its units moved to w1 and w3 %.1f s later (session timeout 6 s)", i, moved.Seconds())
			restored := 0
			for _, s := range []*server{servers[0], servers[2]} {
				b, _ := os.ReadFile(s.log)
				restored += strings.Count(string(b), "warning unit restored from its checkpoint")
				for _, m := range emptyRE.FindAllStringSubmatch(string(b), -1) {
					if at, err := time.Parse(time.RFC3339Nano, m[1]); err == nil && at.After(killed) {
						t.Errorf("%s started unit %s empty after the kill: its checkpoint was not found", s.log, m[2])
					}
				}
			}
			if restored == 0 {
				t.Errorf("no unit of w2 was restored from its checkpoint on w1 or w3")
			}
			if moved > 16*time.Second {
				t.Errorf("the units moved %.1f s after the kill; want within the session timeout's reach (6 s, then a rebalance: 16 s at most)", moved.Seconds())
			}
		case 20:
			restarted = time.Now()
			servers[1] = envs[1].serveWith("w2.log", "--roles", "warnings", "--instance", "w2")
			waitFor(t, "w2 back, the units shared by three again", 3*time.Minute, func() (bool, string) {
				u := ownedUnits(servers, restarted)
				return len(u) == 3 && unionUnits(u) == parts+1, fmt.Sprint(u)
			})
			t.Logf("w2 restarted at interval %d; the units were shared by three again %.1f s later", i, lastOwnership(servers, restarted).Sub(restarted).Seconds())
		default:
			time.Sleep(600 * time.Millisecond)
		}
	}

	// marts.warnings: every warning of the single engine, once.
	var got []string
	waitFor(t, "marts.warnings to hold the single engine's warnings", 3*time.Minute, func() (bool, string) {
		out, errOut, err := envs[0].try("sql", "--format", "csv", `SELECT warning_id, rule, subject_id, state, level, strftime(event_time AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M') FROM marts.warnings WHERE subject_id LIKE 'fo-%' ORDER BY seq`)
		if err != nil {
			return false, errOut
		}
		got = summariesFromCSV(out)
		return strings.Join(got, "\n") == strings.Join(want, "\n"), fmt.Sprintf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	})
	dups := envs[0].sqlRows(`SELECT count(*) - count(DISTINCT warning_id || state || level || CAST(event_time AS VARCHAR)), count(*) - count(DISTINCT seq) FROM marts.warnings`)
	if len(dups) != 1 || dups[0][0] != "0" || dups[0][1] != "0" {
		t.Errorf("marts.warnings has transitions or sequence numbers twice: %v", dups)
	}
	raised := envs[0].sqlRows(`SELECT strftime(min(event_time) AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M') FROM marts.warnings WHERE subject_id = 'fo-VA' AND state = 'raised'`)
	if peakAt := t0.Add(peak * 5 * time.Minute).Format("2006-01-02T15:04"); len(raised) != 1 || raised[0][0] >= peakAt {
		t.Errorf("the venue raised at %v, want before its peak at %s", raised, peakAt)
	}
	for _, s := range servers {
		s.stop(t)
	}
	t.Logf("%d warnings, as the single engine raised them:\n%s", len(want), strings.Join(want, "\n"))
}

func minCells(m map[int][]string, parts int) int {
	n := 1 << 30
	for p := 0; p < parts; p++ {
		n = min(n, len(m[p]))
	}
	return n
}

var levelRank = map[string]int{"blue": 1, "yellow": 2, "orange": 3, "red": 4}

// summary is one warning: its rule and subject, the interval it was raised
// at, the highest level it reached and the interval it was cleared at.
type summary struct {
	rule, subject, raised, cleared string
	top                            string
}

func summarize(rows [][]string) []string { // rows: warning_id, rule, subject, state, level, event time
	by := map[string]*summary{}
	var order []string
	for _, r := range rows {
		s := by[r[0]]
		if s == nil {
			s = &summary{rule: r[1], subject: r[2]}
			by[r[0]] = s
			order = append(order, r[0])
		}
		switch r[3] {
		case "raised":
			s.raised = r[5]
		case "cleared":
			s.cleared = r[5]
		}
		if r[3] != "cleared" && levelRank[r[4]] > levelRank[s.top] {
			s.top = r[4]
		}
	}
	var out []string
	for _, id := range order {
		s := by[id]
		out = append(out, fmt.Sprintf("%s %s raised %s top %s cleared %s", s.rule, s.subject, s.raised, s.top, s.cleared))
	}
	sort.Strings(out)
	return out
}

func warningSummaries(ts []warnings.Transition) []string {
	var rows [][]string
	for _, t := range ts {
		rows = append(rows, []string{t.WarningID, t.Rule, t.SubjectID, t.State, t.Level, t.EventTime.UTC().Format("2006-01-02T15:04")})
	}
	return summarize(rows)
}

func summariesFromCSV(out string) []string {
	var rows [][]string
	for i, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if i == 0 || line == "" {
			continue
		}
		rows = append(rows, strings.Split(line, ","))
	}
	return summarize(rows)
}

var emptyRE = regexp.MustCompile(`time=(\S+) .*warning unit has no checkpoint.* unit=(\S+)`)

var ownsRE = regexp.MustCompile(`time=(\S+) .*warning instance owns units.* units=(\S*)`)

// ownedUnits reads each server's log: the units of its last ownership line
// after since (servers without one are left out).
func ownedUnits(servers []*server, since time.Time) map[string][]string {
	out := map[string][]string{}
	for _, s := range servers {
		b, _ := os.ReadFile(s.log)
		for _, m := range ownsRE.FindAllStringSubmatch(string(b), -1) {
			at, err := time.Parse(time.RFC3339Nano, m[1])
			if err != nil || at.Before(since) {
				continue
			}
			units := strings.Split(strings.Trim(m[2], `"`), ",")
			if units[0] == "" {
				units = nil
			}
			out[s.log] = units
		}
	}
	return out
}

// lastOwnership is the time of the last ownership line after since.
func lastOwnership(servers []*server, since time.Time) time.Time {
	var last time.Time
	for _, s := range servers {
		b, _ := os.ReadFile(s.log)
		for _, m := range ownsRE.FindAllStringSubmatch(string(b), -1) {
			if at, err := time.Parse(time.RFC3339Nano, m[1]); err == nil && at.After(since) && at.After(last) {
				last = at
			}
		}
	}
	return last
}

func unionUnits(u map[string][]string) int {
	seen := map[string]bool{}
	for _, us := range u {
		for _, x := range us {
			seen[x] = true
		}
	}
	return len(seen)
}

// writeTable commits records to raw.<name> (the reference data a test needs in the lake).
func writeTable(t *testing.T, ctx context.Context, lake *warehouse.Lake, reg *schemas.Registry, name string, recs []schemas.Record) {
	t.Helper()
	s, err := reg.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := lake.EnsureTable(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	st, err := warehouse.StateOf(tb)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]*warehouse.FileWriter{}
	for i, r := range recs {
		if err := s.Validate(r); err != nil {
			t.Fatalf("%s record %d: %v", name, i, err)
		}
		val, dir := warehouse.PartitionKey(s, r)
		fw := files[dir]
		if fw == nil {
			rel := "test-reference.parquet"
			if dir != "" {
				rel = dir + "/" + rel
			}
			if fw, err = lake.NewFileWriter(tb, s, rel, val); err != nil {
				t.Fatal(err)
			}
			files[dir] = fw
		}
		if err := fw.Write(r, fmt.Sprintf("test:%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	var dfs []iceberg.DataFile
	for _, fw := range files {
		df, err := fw.Close()
		if err != nil {
			t.Fatal(err)
		}
		dfs = append(dfs, df)
	}
	next := st.Clone()
	next.Batch++
	if _, err := lake.Commit(ctx, s.Table, dfs, next); err != nil {
		t.Fatal(err)
	}
}

// record is a record of the named schema from its fields' values by name.
func record(reg *schemas.Registry, name string, vals map[string]any) schemas.Record {
	s, _ := reg.Get(name)
	r := make(schemas.Record, len(s.Fields))
	for k, v := range vals {
		if i := s.Index(k); i >= 0 {
			r[i] = v
		}
	}
	return r
}
