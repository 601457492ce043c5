package warnings

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"citybrain/internal/broker"
	"citybrain/schemas"
	"citybrain/warehouse"
)

// groupCells are grid cells chosen so that the test's partitions each hold
// some: cell i goes to partition hash(id) mod parts.
func groupCells(parts int) map[int][]string {
	out := map[int][]string{}
	ps := make([]int, parts)
	for i := range ps {
		ps[i] = i
	}
	for i := 0; len(out) < parts || minLen(out, parts) < 3; i++ {
		id := fmt.Sprintf("g%03d", i)
		p := (&kafka.Hash{}).Balance(kafka.Message{Key: []byte(id)}, ps...)
		out[p] = append(out[p], id)
	}
	return out
}

func minLen(m map[int][]string, parts int) int {
	n := 1 << 30
	for p := 0; p < parts; p++ {
		n = min(n, len(m[p]))
	}
	return n
}

// groupReference: one venue over a cell of each partition (so its count is
// summed across partitions), 1,000 m² cells.
func groupReference(cells map[int][]string) Reference {
	var ref Reference
	ref.Venues = []Venue{{ID: "VG", NameZh: "跨分区场所", NameEn: "Venue across partitions", Kind: "square", Capacity: 3000, AreaM2: 15000, StreetCode: "110102001", Responsible: "xc-office"}}
	var ps []int
	for p := range cells {
		ps = append(ps, p)
	}
	sort.Ints(ps)
	for _, p := range ps {
		for _, c := range cells[p] {
			ref.GridCells = append(ref.GridCells, GridCell{c, "110102001", 1000})
		}
		ref.VenueCells = append(ref.VenueCells, VenueCell{"VG", cells[p][0], 1})
	}
	return ref
}

// surge is interval i of the test feed: every cell 10 people, except the
// venue's cells (the first of each partition) and one plain cell per
// partition (the second), which rise to a peak at interval 6 and fall.
func surge(cells map[int][]string, at time.Time, i int) []schemas.Record {
	peak := []int64{10, 400, 900, 1400, 2200, 3000, 3600, 3000, 2000, 900, 300, 10, 10, 10, 10, 10, 10}
	var recs []schemas.Record
	for p := 0; p < len(cells); p++ {
		for j, c := range cells[p] {
			n := int64(10)
			if j < 2 {
				n = peak[i]
			}
			recs = append(recs, signalRec(c, at, n))
		}
	}
	return recs
}

type groupInstance struct {
	g      *Group
	cancel context.CancelFunc
	done   chan struct{}
}

// TestPartitionedGroup: a partitioned engine (3 partitions: 3 cell units and
// the district unit) on the embedded broker, run by one instance, then two
// (the units move at the rebalance, restored from checkpoints), then one
// again after the other stops. marts.warnings holds each warning the
// single engine raises on the same input, once: no (warning, state, event)
// twice, no sequence twice, the venue summed across partitions.
func TestPartitionedGroup(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the embedded broker and a lake")
	}
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	const parts = 3
	emb, err := broker.StartEmbedded(dir, 0, log)
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	bcfg := broker.DefaultConfig()
	bcfg.Partitions = parts
	client := broker.NewClient([]string{emb.Addr()}, bcfg)
	if err := client.EnsureTopics(ctx, "raw.mobile_signal"); err != nil {
		t.Fatal(err)
	}
	lake, err := warehouse.Open(ctx, warehouse.DefaultConfig(), filepath.Join(dir, "lake"), log)
	if err != nil {
		t.Fatal(err)
	}
	defer lake.Close()
	side, err := lake.SideStore()
	if err != nil {
		t.Fatal(err)
	}
	reg, _ := schemas.Builtin()
	ms, _ := reg.Get("mobile_signal")
	cfg := observedOnly()
	cells := groupCells(parts)
	ref := groupReference(cells)

	start := func(name string) *groupInstance {
		gctx, cancel := context.WithCancel(ctx)
		g := &Group{Cfg: cfg, Client: client, Reg: reg, Lake: lake, Log: log.With("instance", name), Hub: NewHub(),
			Inputs: DefaultTopics(), Dir: filepath.Join(dir, name), Partitions: parts,
			Checkpoints: &Checkpoints{Store: side}, CheckpointEvery: 300 * time.Millisecond, SessionTimeout: 6 * time.Second,
			Reference:  func(ctx context.Context, eng *Engine) error { return eng.LoadReference(ctx, ref) },
			RefVersion: func() int64 { return 1 }}
		in := &groupInstance{g: g, cancel: cancel, done: make(chan struct{})}
		go func() { defer close(in.done); g.Run(gctx) }()
		return in
	}
	stop := func(in *groupInstance) { in.cancel(); <-in.done }
	owned := func(ins ...*groupInstance) int {
		n := 0
		for _, in := range ins {
			n += len(in.g.Owned())
		}
		return n
	}
	w := client.Writer("raw.mobile_signal")
	defer w.Close()
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	var all []schemas.Record
	send := func(from, to int) {
		for i := from; i < to; i++ {
			recs := surge(cells, t0.Add(time.Duration(i)*5*time.Minute), i)
			all = append(all, recs...)
			var msgs []kafka.Message
			for _, r := range recs {
				msgs = append(msgs, kafka.Message{Key: []byte(r[0].(string)), Value: ms.Encode(nil, r)})
			}
			if err := w.WriteMessages(ctx, msgs...); err != nil {
				t.Fatal(err)
			}
		}
	}
	lakeRows := func() [][]any {
		eng, err := warehouse.NewEngine(ctx, lake)
		if err != nil {
			t.Fatal(err)
		}
		defer eng.Close()
		rows, err := eng.Query(ctx, "SELECT warning_id, state, level, rule, subject_id, CAST(event_time AS VARCHAR), seq FROM marts.warnings ORDER BY seq")
		if err != nil {
			return nil
		}
		defer rows.Close()
		var out [][]any
		for rows.Next() {
			var id, st, lv, rule, subj, ev string
			var seq int64
			rows.Scan(&id, &st, &lv, &rule, &subj, &ev, &seq)
			out = append(out, []any{id, st, lv, rule, subj, ev, seq})
		}
		return out
	}

	// The single engine on the same input: the expected transitions.
	single := newTestEngine(t, cfg, "")
	if err := single.LoadReference(ctx, ref); err != nil {
		t.Fatal(err)
	}
	const intervals = 17
	var expect []string
	for i := 0; i < intervals; i++ {
		ts, err := single.Process(ctx, Batch{Records: map[string][]schemas.Record{"mobile_signal": surge(cells, t0.Add(time.Duration(i)*5*time.Minute), i)}})
		if err != nil {
			t.Fatal(err)
		}
		for _, tr := range ts {
			expect = append(expect, tr.Rule+" "+tr.SubjectID+" "+tr.State+" "+tr.Level)
		}
	}
	sort.Strings(expect)
	if !strings.Contains(strings.Join(expect, "\n"), "mobile_signal.crowd_venue VG raised") || len(expect) < 6 {
		t.Fatalf("the reference run should raise the venue and the cells: %v", expect)
	}

	a := start("a")
	waitFor(t, "instance a owns the 4 units", 30*time.Second, func() bool { return owned(a) == parts+1 })
	send(0, 6)
	waitFor(t, "the first transitions committed", 60*time.Second, func() bool { return len(lakeRows()) > 0 })
	b := start("b")
	waitFor(t, "the units shared by a and b", 60*time.Second, func() bool {
		return owned(a, b) == parts+1 && len(a.g.Owned()) > 0 && len(b.g.Owned()) > 0
	})
	send(6, 12)
	time.Sleep(time.Second)
	stop(a)
	waitFor(t, "b owns every unit", 60*time.Second, func() bool { return owned(b) == parts+1 })
	send(12, intervals)
	var got []string
	waitFor(t, "every transition of the reference run committed", 90*time.Second, func() bool {
		rows := lakeRows()
		got = got[:0]
		for _, r := range rows {
			got = append(got, fmt.Sprintf("%s %s %s %s", r[3], r[4], r[1], r[2]))
		}
		sort.Strings(got)
		return len(got) >= len(expect)
	})
	stop(b)
	rows := lakeRows()
	t.Logf("%d transitions committed, %d expected; a owned %v at the end", len(rows), len(expect), a.g.Owned())
	for _, r := range rows {
		t.Logf("%v", r)
	}
	seqs, events := map[int64]bool{}, map[string]bool{}
	for _, r := range rows {
		seq, ev := r[6].(int64), fmt.Sprint(r[0], r[1], r[5])
		if seqs[seq] || events[ev] {
			t.Errorf("committed twice: %v", r)
		}
		seqs[seq], events[ev] = true, true
	}
	if strings.Join(got, "\n") != strings.Join(expect, "\n") {
		t.Errorf("marts.warnings differs from the single engine's transitions:\ngot\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(expect, "\n"))
	}
	// The units' positions and owners are in the table's summary.
	tb, err := lake.Load(ctx, Table)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := warehouse.StateOf(tb)
	if st.Cursors["warnings.seq.district"] == 0 || st.Cursors["warnings.gen.district"] < 2 {
		t.Errorf("the district unit's sequence and generation should be recorded (moved twice): %v", st.Cursors)
	}
}

// TestSeqAfterSwitch: a unit opened on a table the single engine wrote
// numbers its transitions above the single engine's (in its own class,
// k mod units), so a switch to a partitioned engine repeats no sequence.
func TestSeqAfterSwitch(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	lake, err := warehouse.Open(ctx, warehouse.DefaultConfig(), filepath.Join(dir, "lake"), log)
	if err != nil {
		t.Fatal(err)
	}
	defer lake.Close()
	reg, _ := schemas.Builtin()
	cfg := observedOnly()
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	feed := func(e *Engine, n int) {
		for i := 0; i < n; i++ {
			if _, err := e.Process(ctx, Batch{Records: map[string][]schemas.Record{"mobile_signal": {
				signalRec("c1", t0.Add(time.Duration(i)*5*time.Minute), int64(3000*(i%2))), signalRec("c2", t0.Add(time.Duration(i)*5*time.Minute), int64(6000*(i%2)))}}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	single := newTestEngine(t, cfg, filepath.Join(dir, "single.duckdb"))
	single.LoadReference(ctx, testReference())
	feed(single, 8)
	ss, _ := NewSink(single, lake, reg)
	if n, err := ss.Flush(ctx); err != nil || n == 0 {
		t.Fatalf("single engine flush: %d, %v", n, err)
	}
	top := single.lc.seq
	u := Unit{Index: 1, Count: 3}
	unit, err := OpenUnit(ctx, cfg, filepath.Join(dir, "p1.duckdb"), reg, log, time.Now, u)
	if err != nil {
		t.Fatal(err)
	}
	defer unit.Close()
	us, _ := NewSink(unit, lake, reg)
	if err := us.RaiseSeq(ctx); err != nil {
		t.Fatal(err)
	}
	if unit.lc.seq < top || unit.lc.seq%3 != 1 {
		t.Fatalf("unit p1's sequence %d after the single engine's %d: want ≥ it and 1 mod 3", unit.lc.seq, top)
	}
	unit.LoadReference(ctx, testReference())
	feed(unit, 8)
	if n, err := us.Flush(ctx); err != nil || n == 0 {
		t.Fatalf("unit flush: %d, %v", n, err)
	}
	if got := lakeCount(t, ctx, lake, "SELECT count(*) - count(DISTINCT seq) FROM marts.warnings"); got != 0 {
		t.Errorf("%d sequence numbers twice in marts.warnings", got)
	}
}

// TestFenceAtTakeover: a new owner records its generation when it takes a
// unit over, before it lists the checkpoints — so the old owner (a zombie
// paused past the session timeout) can commit nothing from then on, not
// even before the new owner's first commit, and the checkpoint the new
// owner restores covers everything the table holds.
func TestFenceAtTakeover(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	lake, err := warehouse.Open(ctx, warehouse.DefaultConfig(), filepath.Join(dir, "lake"), log)
	if err != nil {
		t.Fatal(err)
	}
	defer lake.Close()
	side, err := lake.SideStore()
	if err != nil {
		t.Fatal(err)
	}
	reg, _ := schemas.Builtin()
	cfg := observedOnly()
	cps := &Checkpoints{Store: side}
	u := Unit{Index: 1, Count: 3}
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	// A crowd that rises for 4 intervals, then falls.
	people := []int64{1000, 3000, 5000, 8000, 8000, 3000, 500, 100}
	feed := func(e *Engine, from, n int) {
		for i := from; i < from+n; i++ {
			at := t0.Add(time.Duration(i) * 5 * time.Minute)
			if _, err := e.Process(ctx, Batch{Records: map[string][]schemas.Record{"mobile_signal": {
				signalRec("c1", at, people[i]), signalRec("c2", at, 2*people[i])}}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The old owner, generation 1: transitions committed, a checkpoint
	// covering them uploaded.
	old, err := OpenUnit(ctx, cfg, filepath.Join(dir, "old", "p1.duckdb"), reg, log, time.Now, u)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	old.LoadReference(ctx, testReference())
	oldSink, _ := NewSink(old, lake, reg)
	oldSink.Gen = 1
	feed(old, 0, 4)
	cp1, err := cps.Save(ctx, old, 1)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := oldSink.Flush(ctx); err != nil || n == 0 {
		t.Fatalf("old owner's first commit: %d, %v", n, err)
	}
	// The new owner takes the unit over: generation 2, recorded at once.
	g := &Group{Cfg: cfg, Reg: reg, Lake: lake, Log: log, Dir: filepath.Join(dir, "new"), Checkpoints: cps}
	cp, gen, err := g.restore(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if gen != 2 || cp.Key != cp1.Key {
		t.Fatalf("takeover: generation %d from %s, want 2 from %s", gen, cp.Key, cp1.Key)
	}
	// The zombie goes on: its checkpoint uploads, its commit is refused.
	feed(old, 4, 4)
	if _, err := cps.Save(ctx, old, 1); err != nil {
		t.Fatal(err)
	}
	before := lakeCount(t, ctx, lake, "SELECT count(*) FROM marts.warnings")
	if pend, _ := old.queue(ctx, "outbox", 1000); len(pend) == 0 {
		t.Fatal("the zombie made no transition to commit: the test shows nothing")
	}
	if n, err := oldSink.Flush(ctx); !errors.Is(err, ErrFenced) {
		t.Fatalf("the zombie's commit after the takeover: %d rows, %v; want ErrFenced", n, err)
	}
	if after := lakeCount(t, ctx, lake, "SELECT count(*) FROM marts.warnings"); after != before {
		t.Errorf("marts.warnings went from %d to %d rows after the takeover", before, after)
	}
	// A second takeover goes one generation higher.
	if _, gen, err := g.restore(ctx, u); err != nil || gen != 3 {
		t.Errorf("second takeover: generation %d, %v; want 3", gen, err)
	}
}
