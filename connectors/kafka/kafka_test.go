package kafkasrc_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"citybrain/connectors"
	"citybrain/connectors/connectortest"
	kafkasrc "citybrain/connectors/kafka"
	"citybrain/connectors/mapping"
	"citybrain/internal/broker"
	"citybrain/internal/testenv"
	"citybrain/schemas"
)

// mobileSignal is the schema the tests map onto, with a mapping of
// {"cell", "ts", "n"} messages.
func mobileSignal(t testing.TB) (*schemas.Schema, *mapping.Mapper) {
	t.Helper()
	reg, err := schemas.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	s, err := reg.Get("mobile_signal")
	if err != nil {
		t.Fatal(err)
	}
	m, err := mapping.New(s, mapping.Spec{Fields: map[string]mapping.FieldSpec{
		"grid_cell_id": {Column: "cell"}, "window_start": {Column: "ts"}, "people_count": {Column: "n"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return s, m
}

// upstream is a cluster the tests produce to.
type upstream struct {
	addr   string
	client *broker.Client
	topics atomic.Int64
}

func embedded(t *testing.T) *upstream {
	t.Helper()
	e, err := broker.StartEmbedded(t.TempDir(), 0, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return &upstream{addr: e.Addr(), client: broker.NewClient([]string{e.Addr()}, broker.Config{Partitions: 3, ReplicationFactor: 1})}
}

// topic creates a fresh topic with 3 partitions.
func (u *upstream) topic(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("dept.traffic.%d", u.topics.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := u.client.EnsureTopics(ctx, name); err != nil {
		t.Fatal(err)
	}
	return name
}

// produce writes values keyed by their number, which spreads them over
// the partitions.
func (u *upstream) produce(t *testing.T, topic string, from int, values []string) {
	t.Helper()
	w := u.client.Writer(topic)
	defer w.Close()
	msgs := make([]kafka.Message, len(values))
	for i, v := range values {
		msgs[i] = kafka.Message{Key: []byte(fmt.Sprint(from + i)), Value: []byte(v)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for len(msgs) > 0 {
		n := min(len(msgs), 5000)
		if err := w.WriteMessages(ctx, msgs[:n]...); err != nil {
			t.Fatal(err)
		}
		msgs = msgs[n:]
	}
}

func jsonRecords(from, to int) []string {
	out := make([]string, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf(`{"cell":"XC-%d","ts":"2026-11-01 08:00:00","n":%d,"meta":{"op":"cmcc"}}`, i%50, i))
	}
	return out
}

func open(t *testing.T, cfg kafkasrc.Config, m *mapping.Mapper) *kafkasrc.Source {
	t.Helper()
	if cfg.IdleReturn == 0 {
		cfg.IdleReturn = 200 * time.Millisecond
	}
	src, err := kafkasrc.New(cfg, m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

// TestConformance runs the transport suite against the embedded broker: a
// feed is a fresh 3-partition topic of JSON messages.
func TestConformance(t *testing.T) {
	s, m := mobileSignal(t)
	u := embedded(t)
	var topic string
	connectortest.Run(t, connectortest.Harness{
		New: func(t *testing.T, n int) connectors.Source {
			topic = u.topic(t)
			u.produce(t, topic, 0, jsonRecords(0, n))
			return open(t, kafkasrc.Config{Brokers: []string{u.addr}, Topic: topic, BatchRows: 300}, m)
		},
		Append: func(t *testing.T, n, k int) { u.produce(t, topic, n, jsonRecords(n, n+k)) },
		Key:    func(r connectors.Record) int { return int(r.Values[s.Index("people_count")].(int64)) },
		Broken: func(t *testing.T) connectors.Source {
			return open(t, kafkasrc.Config{Brokers: []string{u.addr}, Topic: "no.such.topic"}, m)
		},
	})
}

type collector struct{ recs []connectors.Record }

func (c *collector) emit(_ context.Context, b []connectors.Record) error {
	c.recs = append(c.recs, b...)
	return nil
}

func positions(recs []connectors.Record) connectors.Positions {
	p := connectors.Positions{}
	for _, r := range recs {
		p.Advance(r.Cursor)
	}
	return p
}

// TestCSV reads delimited lines, with a column list, a quoted delimiter,
// rejects keeping their raw bytes, and the cursor naming partition and offset.
func TestCSV(t *testing.T) {
	s, m := mobileSignal(t)
	u := embedded(t)
	topic := u.topic(t)
	u.produce(t, topic, 0, []string{
		"XC-1;2026-11-01 08:00:00;10\n",
		`"XC;2";2026-11-01 08:05:00;20`,
		"XC-3;2026-11-01 08:10:00;many",
		"XC-4;2026-11-01 08:15:00",
		"\ufeffXC-5;2026-11-01 08:20:00;50\r\n",
		"XC-6;2026-11-01 08:25:00;60\nXC-7;2026-11-01 08:30:00;70",
	})
	src := open(t, kafkasrc.Config{Brokers: []string{u.addr}, Topic: topic, Format: "csv", Delimiter: ";", Columns: []string{"cell", "ts", "n"}}, m)
	var c collector
	if err := src.Read(context.Background(), nil, c.emit); err != nil {
		t.Fatal(err)
	}
	good, bad := map[string]int64{}, map[string]string{}
	for _, r := range c.recs {
		if !strings.HasPrefix(r.Cursor.Stream, "kafka:"+topic+"/") {
			t.Errorf("stream %q", r.Cursor.Stream)
		}
		if r.Err != nil {
			bad[string(r.Raw)] = r.Err.Error()
			continue
		}
		good[r.Values[s.Index("grid_cell_id")].(string)] = r.Values[s.Index("people_count")].(int64)
	}
	want := map[string]int64{"XC-1": 10, "XC;2": 20, "XC-5": 50}
	if fmt.Sprint(good) != fmt.Sprint(want) {
		t.Errorf("good records %v, want %v", good, want)
	}
	if len(bad) != 3 || bad["XC-3;2026-11-01 08:10:00;many"] == "" || bad["XC-4;2026-11-01 08:15:00"] == "" ||
		!strings.Contains(bad["XC-6;2026-11-01 08:25:00;60\nXC-7;2026-11-01 08:30:00;70"], "more than one line") {
		t.Errorf("rejects %q", bad)
	}
	// Every position is a partition offset: a read from them yields nothing.
	var again collector
	if err := src.Read(context.Background(), positions(c.recs), again.emit); err != nil || len(again.recs) != 0 {
		t.Errorf("re-read: %v, %d records", err, len(again.recs))
	}
}

// TestErrors covers configuration checks and error classification.
func TestErrors(t *testing.T) {
	_, m := mobileSignal(t)
	for _, cfg := range []kafkasrc.Config{
		{Topic: "t"},
		{Brokers: []string{"localhost"}, Topic: "t"},
		{Brokers: []string{"h:9092"}, Topic: "bad topic"},
		{Brokers: []string{"h:9092"}, Topic: "t", Format: "xml"},
		{Brokers: []string{"h:9092"}, Topic: "t", Columns: []string{"a"}},
		{Brokers: []string{"h:9092"}, Topic: "t", Format: "csv", Delimiter: ";;"},
		{Brokers: []string{"h:9092"}, Topic: "t", Mechanism: "plain"},
		{Brokers: []string{"h:9092"}, Topic: "t", Username: "u", PasswordEnv: "P"},
		{Brokers: []string{"h:9092"}, Topic: "t", Mechanism: "gssapi", Username: "u", PasswordEnv: "P"},
		{Brokers: []string{"h:9092"}, Topic: "t", StartAt: "middle"},
	} {
		if _, err := kafkasrc.New(cfg, m); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}

	// Unset password variable: permanent, before connecting.
	src := open(t, kafkasrc.Config{Brokers: []string{"127.0.0.1:1"}, Topic: "t", Mechanism: "plain", Username: "u", PasswordEnv: "CITYBRAIN_TEST_UNSET_PW"}, m)
	if err := src.Read(context.Background(), nil, (&collector{}).emit); !errors.Is(err, connectors.ErrPermanent) {
		t.Errorf("unset password: %v, want ErrPermanent", err)
	}

	// Unreachable broker: a plain error after a bounded retry.
	src = open(t, kafkasrc.Config{Brokers: []string{"127.0.0.1:1"}, Topic: "t"}, m)
	start := time.Now()
	err := src.Read(context.Background(), nil, (&collector{}).emit)
	if err == nil || errors.Is(err, connectors.ErrPermanent) {
		t.Errorf("unreachable broker: %v, want a transient error", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("unreachable broker took %v", d)
	}

	// Cancelled context.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := src.Read(ctx, nil, (&collector{}).emit); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

// TestPositions covers start_at latest, a position past the end (a
// re-created topic) and the JSON rejects.
func TestPositions(t *testing.T) {
	s, m := mobileSignal(t)
	u := embedded(t)
	topic := u.topic(t)
	u.produce(t, topic, 0, jsonRecords(0, 30))
	src := open(t, kafkasrc.Config{Brokers: []string{u.addr}, Topic: topic, StartAt: "latest"}, m)
	var c collector
	if err := src.Read(context.Background(), nil, c.emit); err != nil || len(c.recs) != 0 {
		t.Fatalf("latest: %v, %d records", err, len(c.recs))
	}
	u.produce(t, topic, 30, append(jsonRecords(30, 40), `[1,2]`, `{"cell":"XC-1","ts":"yesterday","n":1}`, `{"cell":`))
	if err := src.Read(context.Background(), positions(c.recs), c.emit); err != nil {
		t.Fatal(err)
	}
	var good, bad int
	for _, r := range c.recs {
		if r.Err != nil {
			bad++
			if len(r.Raw) == 0 {
				t.Errorf("reject without raw: %v", r.Err)
			}
			continue
		}
		if n := r.Values[s.Index("people_count")].(int64); n < 30 {
			t.Errorf("latest read old record %d", n)
		}
		good++
	}
	if good != 10 || bad != 3 {
		t.Errorf("read %d good, %d rejects; want 10 and 3", good, bad)
	}

	past := connectors.Positions{}
	past.Advance(connectors.Cursor{Stream: src.Stream(0), Pos: 1_000_000})
	if err := src.Read(context.Background(), past, c.emit); !errors.Is(err, connectors.ErrPermanent) {
		t.Errorf("position past the end: %v, want ErrPermanent", err)
	}
	gone := connectors.Positions{}
	gone.Advance(connectors.Cursor{Stream: src.Stream(7), Pos: 3})
	if err := src.Read(context.Background(), gone, c.emit); !errors.Is(err, connectors.ErrPermanent) {
		t.Errorf("position of a missing partition: %v, want ErrPermanent", err)
	}
}

// TestRetentionGap: messages the upstream deleted before they were read are
// reported by one reject at the offset before the first retained one.
func TestRetentionGap(t *testing.T) {
	s, m := mobileSignal(t)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "gap"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	addr := c.ListenAddrs()[0]
	u := &upstream{addr: addr, client: broker.NewClient([]string{addr}, broker.Config{Partitions: 1, ReplicationFactor: 1})}
	u.produce(t, "gap", 0, jsonRecords(0, 20))
	src := open(t, kafkasrc.Config{Brokers: []string{addr}, Topic: "gap"}, m)
	var first collector
	if err := src.Read(context.Background(), nil, first.emit); err != nil || len(first.recs) != 20 {
		t.Fatalf("first read: %v, %d records", err, len(first.recs))
	}
	u.produce(t, "gap", 20, jsonRecords(20, 30))
	if err := c.DeleteRecords("gap", 0, 25); err != nil {
		t.Fatal(err)
	}
	var rest collector
	if err := src.Read(context.Background(), positions(first.recs), rest.emit); err != nil {
		t.Fatal(err)
	}
	if len(rest.recs) != 6 || rest.recs[0].Err == nil || rest.recs[0].Cursor.Pos != 24 ||
		!strings.Contains(rest.recs[0].Err.Error(), "offsets 20..24 (5 messages)") {
		t.Fatalf("after the gap: %+v", rest.recs)
	}
	for i, r := range rest.recs[1:] {
		if r.Err != nil || r.Cursor.Pos != int64(25+i) || r.Values[s.Index("people_count")].(int64) != int64(25+i) {
			t.Errorf("record %d: %+v", i, r)
		}
	}
	if src.Lost.Load() != 5 {
		t.Errorf("Lost = %d", src.Lost.Load())
	}
}

// TestRealKafka reads 10,000 records across 3 partitions from Apache Kafka,
// stopping midway and resuming from the cursors.
func TestRealKafka(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Kafka broker; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	k, err := testenv.StartKafka(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Stop() })
	u := &upstream{addr: k.Bootstrap(), client: broker.NewClient([]string{k.Bootstrap()}, broker.Config{Partitions: 3, ReplicationFactor: 1})}
	topic := u.topic(t)
	const n = 10_000
	u.produce(t, topic, 0, jsonRecords(0, n))
	s, m := mobileSignal(t)
	src := open(t, kafkasrc.Config{Brokers: []string{k.Bootstrap()}, Topic: topic, BatchRows: 700}, m)

	stop := errors.New("stop")
	var first []connectors.Record
	err = src.Read(ctx, nil, func(_ context.Context, b []connectors.Record) error {
		if len(first) >= n/2 {
			return stop
		}
		first = append(first, b...)
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatalf("first read: %v", err)
	}
	var rest collector
	if err := src.Read(ctx, positions(first), rest.emit); err != nil {
		t.Fatal(err)
	}
	all := append(first, rest.recs...)
	seen := map[int64]int{}
	last := map[string]int64{}
	for _, r := range all {
		if r.Err != nil {
			t.Fatalf("reject %v: %v", r.Cursor, r.Err)
		}
		if p, ok := last[r.Cursor.Stream]; ok && r.Cursor.Pos <= p {
			t.Fatalf("cursor %v after %d", r.Cursor, p)
		}
		last[r.Cursor.Stream] = r.Cursor.Pos
		seen[r.Values[s.Index("people_count")].(int64)]++
	}
	if len(all) != n || len(seen) != n {
		t.Fatalf("read %d records, %d distinct; want %d", len(all), len(seen), n)
	}
	if len(last) != 3 {
		t.Errorf("streams %v, want 3 partitions", last)
	}
	for stream, pos := range last {
		if !strings.HasPrefix(stream, "kafka:"+topic+"/") {
			t.Errorf("stream %q", stream)
		}
		_ = pos
	}

	// Unknown topic on the real cluster is permanent too.
	bad := open(t, kafkasrc.Config{Brokers: []string{k.Bootstrap()}, Topic: "no.such.topic"}, m)
	if err := bad.Read(ctx, nil, (&collector{}).emit); !errors.Is(err, connectors.ErrPermanent) {
		t.Errorf("unknown topic: %v, want ErrPermanent", err)
	}
}

func FuzzDecodeCSV(f *testing.F) {
	for _, s := range []string{"a,b,c", `"a,1",b` + "\r\n", "\ufeffx", "a\nb", `"unterminated`, ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fields, err := kafkasrc.DecodeCSV(b, ',')
		if err == nil && len(fields) == 0 {
			t.Fatal("no fields and no error")
		}
	})
}
