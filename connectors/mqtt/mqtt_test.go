package mqtt_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"citybrain/connectors"
	"citybrain/connectors/mqtt"
)

func TestMQTTConfigValidate(t *testing.T) {
	ok := mqtt.Config{Broker: "tcp://127.0.0.1:1883", Topics: []string{"water/+/#"}, ClientID: "cb", PosField: "seq"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*mqtt.Config){
		"no broker":        func(c *mqtt.Config) { c.Broker = "" },
		"bad scheme":       func(c *mqtt.Config) { c.Broker = "http://x:1883" },
		"no host":          func(c *mqtt.Config) { c.Broker = "tcp://" },
		"no topics":        func(c *mqtt.Config) { c.Topics = nil },
		"# not last":       func(c *mqtt.Config) { c.Topics = []string{"water/#/x"} },
		"partial +":        func(c *mqtt.Config) { c.Topics = []string{"water/p+"} },
		"empty topic":      func(c *mqtt.Config) { c.Topics = []string{""} },
		"no client id":     func(c *mqtt.Config) { c.ClientID = "" },
		"qos 3":            func(c *mqtt.Config) { c.QoS = 3 },
		"password no user": func(c *mqtt.Config) { c.PasswordEnv = "X" },
		"no pos field":     func(c *mqtt.Config) { c.PosField = "" },
		"negative idle":    func(c *mqtt.Config) { c.IdleReturn = -1 },
	} {
		c := ok
		mut(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	c := ok
	c.Username, c.PasswordEnv = "u", "CB_TEST_UNSET_PASSWORD_VAR"
	if _, err := mqtt.New(c, nil); err == nil || !strings.Contains(err.Error(), "not set") {
		t.Errorf("unset password env: %v", err)
	}
}

// An unreachable broker is an ordinary (retryable) error, not ErrPermanent.
func TestMQTTUnreachableIsRetryable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "tcp://" + l.Addr().String()
	l.Close()
	_, m := water(t)
	cfg := config(addr, "cb-unreachable", "x")
	cfg.ConnectTimeout = 2 * time.Second
	src := newSource(t, cfg, m)
	var c collect
	err = src.Read(context.Background(), nil, c.emit)
	if err == nil || errors.Is(err, connectors.ErrPermanent) {
		t.Fatalf("got %v, want a non-permanent connection error", err)
	}
}

// (a) QoS 1 + persistent session: what is published while the source is
// stopped is delivered when it comes back.
func TestMQTTPersistentSession(t *testing.T) {
	mq := startBroker(t)
	s, m := water(t)
	id, prefix := uniq("persist"), uniq("persist")
	ctx := context.Background()

	first := newSource(t, config(mq.Addr(), id, prefix), m)
	if err := first.Connect(ctx); err != nil { // creates the session
		t.Fatal(err)
	}
	first.Close()

	publishRange(t, publisher(t, mq.Addr()), prefix, 0, 1000)

	src := newSource(t, config(mq.Addr(), id, prefix), m)
	var c collect
	if err := src.Read(ctx, connectors.Positions{}, c.emit); err != nil {
		t.Fatal(err)
	}
	exactlyOnce(t, c.recs, key(s), 1000)
	if st := src.Stats(); st.Received != 1000 || st.Emitted != 1000 || st.Duplicates != 0 {
		t.Errorf("stats %+v", st)
	}
	// All were acknowledged: another session with the id gets nothing.
	src.Close()
	again := newSource(t, config(mq.Addr(), id, prefix), m)
	var c2 collect
	if err := again.Read(ctx, positions(c.recs), c2.emit); err != nil {
		t.Fatal(err)
	}
	if len(c2.recs) != 0 || again.Stats().Received != 0 {
		t.Fatalf("acknowledged messages delivered again: %d records, stats %+v", len(c2.recs), again.Stats())
	}
}

// (b) A crash after 300 records: the batch that reached Kafka but was not
// acknowledged and everything after it are redelivered to a new source with
// the same client id; the redelivered ones are dropped by Pos.
func TestMQTTCrashResume(t *testing.T) {
	mq := startBroker(t)
	s, m := water(t)
	id, prefix := uniq("crash"), uniq("crash")
	ctx := context.Background()
	const n = 1000
	cfg := config(mq.Addr(), id, prefix)
	cfg.BatchSize = 50 // so the crash comes after 300 of the 1000

	src := newSource(t, cfg, m)
	if err := src.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	publishRange(t, publisher(t, mq.Addr()), prefix, 0, n)
	first := collect{stopAfter: 300}
	if err := src.Read(ctx, connectors.Positions{}, first.emit); !errors.Is(err, errCrash) {
		t.Fatalf("Read returned %v, want emit's error", err)
	}
	src.Close() // nothing more is acknowledged

	if len(first.recs) < 300 || len(first.recs) >= 350 {
		t.Fatalf("first read took %d records, want 300 up to a batch more", len(first.recs))
	}
	next := newSource(t, cfg, m)
	var rest collect
	if err := next.Read(ctx, positions(first.recs), rest.emit); err != nil {
		t.Fatal(err)
	}
	exactlyOnce(t, append(first.recs, rest.recs...), key(s), n)
	if d := next.Stats().Duplicates; d == 0 {
		t.Errorf("no duplicates dropped: the unacknowledged batch should have been redelivered")
	} else {
		t.Logf("first read %d records, second %d, redeliveries dropped %d", len(first.recs), len(rest.recs), d)
	}
}

// (c) The broker restarts in the middle of a read: the source reconnects
// and nothing is lost or duplicated.
func TestMQTTBrokerRestart(t *testing.T) {
	mq := startBroker(t)
	s, m := water(t)
	id, prefix := uniq("restart"), uniq("restart")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const n, more = 1000, 200
	cfg := config(mq.Addr(), id, prefix)
	cfg.BatchSize = 50 // so the restart comes mid-stream

	src := newSource(t, cfg, m)
	if err := src.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	publishRange(t, publisher(t, mq.Addr()), prefix, 0, n)

	restarted := false
	c := collect{onBatch: func(total int) {
		if total >= 200 && !restarted {
			restarted = true
			if err := mq.Restart(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}}
	published := false
	deadline := time.Now().Add(90 * time.Second)
	for len(c.recs) < n+more && time.Now().Before(deadline) {
		if err := src.Read(ctx, positions(c.recs), c.emit); err != nil {
			t.Fatal(err)
		}
		if restarted && !published && len(c.recs) >= n {
			// After the restart the session still works for new messages.
			publishRange(t, publisher(t, mq.Addr()), prefix, n, n+more)
			published = true
		}
	}
	if !restarted {
		t.Fatal("broker was not restarted")
	}
	exactlyOnce(t, c.recs, key(s), n+more)
	t.Logf("stats after restart: %+v", src.Stats())
}

// (d) Bad payloads become rejects carrying the raw bytes; redeliveries of a
// good one are dropped.
func TestMQTTRejects(t *testing.T) {
	mq := startBroker(t)
	_, m := water(t)
	id, prefix := uniq("rej"), uniq("rej")
	ctx := context.Background()
	cfg := config(mq.Addr(), id, prefix)
	cfg.MaxRecordBytes = 4096
	src := newSource(t, cfg, m)
	if err := src.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	tp := prefix + "/water/pressure/P-0001"
	good := payload
	big := `{"seq":9,"pad":"` + strings.Repeat("x", 5000) + `"}`
	payloads := []string{
		good(1),
		`{"seq":2,"n":2,"kind":`,    // bad JSON: pos unknown
		`[1,2,3]`,                   // not an object
		`{"n":3,"kind":"pressure"}`, // no seq
		strings.Replace(good(4), `"n":4`, `"n":"four"`, 1), // mapping error, pos known
		good(5),
		good(5), // redelivery-like duplicate
		good(3), // a sensor going backwards
		big,
	}
	pub := publisher(t, mq.Addr())
	for _, p := range payloads {
		publishWait(t, []paho.Token{pub.Publish(tp, 1, false, p)})
	}
	var c collect
	if err := src.Read(ctx, connectors.Positions{}, c.emit); err != nil {
		t.Fatal(err)
	}
	type want struct {
		pos    int64
		reject string
		raw    string
	}
	wants := []want{
		{pos: 1},
		{pos: 1, reject: "invalid JSON", raw: payloads[1]},
		{pos: 1, reject: "not a JSON object", raw: payloads[2]},
		{pos: 1, reject: "no seq", raw: payloads[3]},
		{pos: 4, reject: "four", raw: payloads[4]},
		{pos: 5},
		{pos: 5, reject: "exceeds mqtt.max_record_bytes", raw: big[:4096]},
	}
	if len(c.recs) != len(wants) {
		for _, r := range c.recs {
			t.Logf("%v err=%v", r.Cursor, r.Err)
		}
		t.Fatalf("%d records, want %d", len(c.recs), len(wants))
	}
	for i, w := range wants {
		r := c.recs[i]
		if r.Cursor.Stream != tp || r.Cursor.Pos != w.pos {
			t.Errorf("#%d: cursor %v, want %s#%d", i, r.Cursor, tp, w.pos)
		}
		if w.reject == "" {
			if r.Err != nil {
				t.Errorf("#%d: unexpected reject %v", i, r.Err)
			}
			continue
		}
		if r.Err == nil || !strings.Contains(r.Err.Error(), w.reject) {
			t.Errorf("#%d: err %v, want %q", i, r.Err, w.reject)
		}
		if !bytes.Equal(r.Raw, []byte(w.raw)) {
			t.Errorf("#%d: raw %.80q, want %.80q", i, r.Raw, w.raw)
		}
		if r.Values != nil {
			t.Errorf("#%d: reject with values", i)
		}
	}
	if st := src.Stats(); st.Duplicates != 2 || st.Rejected != 5 || st.Emitted != 2 {
		t.Errorf("stats %+v, want 2 duplicates, 5 rejects, 2 good", st)
	}

	// A reject of an unseen stream whose pos cannot be read never moves it.
	other := prefix + "/water/pressure/P-0002"
	publishWait(t, []paho.Token{pub.Publish(other, 1, false, "not json")})
	var c2 collect
	if err := src.Read(ctx, positions(c.recs), c2.emit); err != nil {
		t.Fatal(err)
	}
	if len(c2.recs) != 1 || c2.recs[0].Cursor.Pos != math.MinInt64 || c2.recs[0].Err == nil {
		t.Fatalf("got %+v", c2.recs)
	}
}

// Memory stays bounded when messages arrive faster than they are read: the
// source stops reading the connection and the broker keeps the rest.
func TestMQTTBoundedQueue(t *testing.T) {
	mq := startBroker(t)
	s, m := water(t)
	id, prefix := uniq("bound"), uniq("bound")
	ctx := context.Background()
	cfg := config(mq.Addr(), id, prefix)
	cfg.BatchSize = 10 // holds at most 40 waiting messages
	src := newSource(t, cfg, m)
	if err := src.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	publishRange(t, publisher(t, mq.Addr()), prefix, 0, 1000)
	time.Sleep(300 * time.Millisecond)
	if got := src.Stats().Received; got > 41 {
		t.Fatalf("received %d messages without reading; want at most 41", got)
	}
	var c collect
	if err := src.Read(ctx, connectors.Positions{}, c.emit); err != nil {
		t.Fatal(err)
	}
	exactlyOnce(t, c.recs, key(s), 1000)
}
