package mqtt_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"citybrain/connectors"
	"citybrain/connectors/mapping"
	"citybrain/connectors/mqtt"
	"citybrain/internal/testenv"
	"citybrain/schemas"
)

// sensors is how many sensor topics a test feed spreads its records over.
const sensors = 7

var ids atomic.Int64

// uniq returns a name unique within the test binary.
func uniq(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano()%1e6, ids.Add(1))
}

func startBroker(t *testing.T) *testenv.Mosquitto {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a Mosquitto broker; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	mq, err := testenv.StartMosquitto(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := mq.Stop(); err != nil {
			t.Error(err)
		}
	})
	return mq
}

// water returns the water_telemetry schema and a mapping of the test
// payloads onto it; the record number n is mapped to seq.
func water(t *testing.T) (*schemas.Schema, *mapping.Mapper) {
	t.Helper()
	reg, err := schemas.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	s, err := reg.Get("water_telemetry")
	if err != nil {
		t.Fatal(err)
	}
	m, err := mapping.New(s, mapping.Spec{Fields: map[string]mapping.FieldSpec{
		"sensor_id":   {Column: "sensor"},
		"observed_at": {Column: "ts"},
		"kind":        {Column: "kind"},
		"value":       {Column: "value"},
		"unit":        {Column: "unit"},
		"seq":         {Column: "n"},
		"latitude":    {Column: "loc.lat"},
		"longitude":   {Column: "loc.lon"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return s, m
}

func key(s *schemas.Schema) func(connectors.Record) int {
	i := s.Index("seq")
	return func(r connectors.Record) int { return int(r.Values[i].(int64)) }
}

func topic(prefix string, i int) string {
	return fmt.Sprintf("%s/water/pressure/P-%04d", prefix, i%sensors)
}

func payload(i int) string {
	ts := time.Date(2026, 11, 1, 8, 0, 0, 0, time.FixedZone("CST", 8*3600)).Add(time.Duration(i) * time.Second)
	return fmt.Sprintf(`{"sensor":"P-%04d","ts":%q,"kind":"pressure","value":0.%03d,"unit":"MPa","seq":%d,"n":%d,"loc":{"lat":39.91,"lon":116.36}}`,
		i%sensors, ts.Format(time.RFC3339), i%1000, i, i)
}

func publisher(t *testing.T, addr string) paho.Client {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(addr).SetClientID(uniq("pub")).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second))
	tok := c.Connect()
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// publishRange publishes records from..to-1 at QoS 1 and waits until the
// broker acknowledged all of them.
func publishRange(t *testing.T, c paho.Client, prefix string, from, to int) {
	t.Helper()
	toks := make([]paho.Token, 0, to-from)
	for i := from; i < to; i++ {
		toks = append(toks, c.Publish(topic(prefix, i), 1, false, payload(i)))
	}
	publishWait(t, toks)
}

func publishWait(t *testing.T, toks []paho.Token) {
	t.Helper()
	for _, tok := range toks {
		if !tok.WaitTimeout(30 * time.Second) {
			t.Fatal("publish timed out")
		}
		if err := tok.Error(); err != nil {
			t.Fatal(err)
		}
	}
}

func config(addr, clientID, prefix string) mqtt.Config {
	return mqtt.Config{
		Broker:     addr,
		Topics:     []string{prefix + "/water/pressure/+"},
		ClientID:   clientID,
		PosField:   "seq",
		IdleReturn: 500 * time.Millisecond,
	}
}

func newSource(t *testing.T, cfg mqtt.Config, m *mapping.Mapper) *mqtt.Source {
	t.Helper()
	src, err := mqtt.New(cfg, m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

// collect gathers records; stopAfter > 0 makes emit fail once that many
// records were taken (the batch that crosses the line is kept, as if it had
// reached Kafka just before a crash, but is not acknowledged).
type collect struct {
	recs      []connectors.Record
	stopAfter int
	onBatch   func(total int)
}

var errCrash = fmt.Errorf("test: crash")

func (c *collect) emit(_ context.Context, batch []connectors.Record) error {
	c.recs = append(c.recs, batch...)
	if c.onBatch != nil {
		c.onBatch(len(c.recs))
	}
	if c.stopAfter > 0 && len(c.recs) >= c.stopAfter {
		return errCrash
	}
	return nil
}

func positions(recs []connectors.Record) connectors.Positions {
	p := connectors.Positions{}
	for _, r := range recs {
		p.Advance(r.Cursor)
	}
	return p
}

// exactlyOnce checks recs hold records 0..n-1 once each, with cursors
// strictly increasing per stream.
func exactlyOnce(t *testing.T, recs []connectors.Record, k func(connectors.Record) int, n int) {
	t.Helper()
	seen := map[int]int{}
	last := map[string]int64{}
	for _, r := range recs {
		if r.Err != nil {
			t.Fatalf("unexpected reject %v: %v", r.Cursor, r.Err)
		}
		if p, ok := last[r.Cursor.Stream]; ok && r.Cursor.Pos <= p {
			t.Fatalf("cursor %v does not follow %d", r.Cursor, p)
		}
		last[r.Cursor.Stream] = r.Cursor.Pos
		seen[k(r)]++
	}
	for i := 0; i < n; i++ {
		if seen[i] != 1 {
			t.Fatalf("record %d seen %d times (%d records, want %d)", i, seen[i], len(recs), n)
		}
	}
	if len(recs) != n {
		t.Fatalf("%d records, want %d", len(recs), n)
	}
}
