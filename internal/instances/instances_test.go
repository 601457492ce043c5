package instances

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"citybrain/internal/broker"
	"citybrain/internal/freshness"
)

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func find(ins []Info, name string) (Info, bool) {
	for _, in := range ins {
		if in.Name == name {
			return in, true
		}
	}
	return Info{}, false
}

// TestInstances: instances sharing a broker (the embedded one, over the
// Kafka protocol) see each other with their roles and paths; one that
// stops cleanly shows stopped and its paths leave; one that goes silent (a
// kill -9: no goodbye) shows down after three missed heartbeats, its paths
// in error; a newcomer reads the ones already running from the topic.
func TestInstances(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e, err := broker.StartEmbedded(t.TempDir(), 0, log)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	c := broker.NewClient([]string{e.Addr()}, broker.DefaultConfig())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	iv := 200 * time.Millisecond
	path := func(name string) func() []freshness.Row {
		return func() []freshness.Row {
			return []freshness.Row{{State: freshness.State{Path: freshness.Path{Component: "warnings", Name: name}}, Level: "ok", CaughtUp: true}}
		}
	}
	a := New(c, Info{Name: "a", Roles: []string{"query", "dashboards"}}, iv, path("a-engine"), log)
	b := New(c, Info{Name: "b", Roles: []string{"warnings"}}, iv, path("b-engine"), log)
	b.SetPartitions(func() map[string]map[string][]int {
		return map[string]map[string][]int{"warnings": {"raw.signal": {0, 1}}}
	})
	actx, acancel := context.WithCancel(ctx)
	bctx, bcancel := context.WithCancel(ctx)
	adone, bdone := make(chan struct{}), make(chan struct{})
	go func() { a.Run(actx); close(adone) }()
	go func() { b.Run(bctx); close(bdone) }()
	waitUntil(t, "a to see b up", func() bool {
		in, ok := find(a.Instances(), "b")
		return ok && in.Up && len(in.Roles) == 1 && in.Roles[0] == "warnings" && len(in.Partitions["warnings"]["raw.signal"]) == 2
	})
	rows := a.PeerRows()
	if len(rows) != 1 || rows[0].Instance != "b" || rows[0].Name != "b-engine" || rows[0].Level != "ok" {
		t.Fatalf("a's peer rows: %+v", rows)
	}
	if self, _ := find(a.Instances(), "a"); !self.Self || !self.Up {
		t.Errorf("a does not list itself up: %+v", self)
	}

	// A silent instance (killed: no goodbye): its last heartbeat, 2 s ago.
	w := c.Writer(Topic)
	defer w.Close()
	ghost := Info{Name: "ghost", Roles: []string{"lakewriter"}, At: time.Now().Add(-2 * time.Second), IntervalS: iv.Seconds(),
		Paths: []freshness.Row{{State: freshness.State{Path: freshness.Path{Component: "source", Name: "weather", Table: "raw.weather"}}, Level: "ok"}}}
	msg, _ := json.Marshal(ghost)
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("ghost"), Value: msg}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "a to hear of the ghost", func() bool { _, ok := find(a.Instances(), "ghost"); return ok })
	if in, _ := find(a.Instances(), "ghost"); in.Up {
		t.Errorf("an instance silent for 10 intervals is up")
	}
	var down, stale bool
	for _, r := range a.PeerRows() {
		if r.Instance == "ghost" && r.Component == "instance" && r.Level == "error" && strings.Contains(r.Err, "实例失联") {
			down = true
		}
		if r.Instance == "ghost" && r.Name == "weather" && r.Level == "error" {
			stale = true
		}
	}
	if !down || !stale {
		t.Errorf("the silent instance's rows: %+v", a.PeerRows())
	}

	// A newcomer reads the running instances from the topic's history.
	c2 := New(c, Info{Name: "c", Roles: []string{"models"}}, iv, nil, log)
	cctx, ccancel := context.WithCancel(ctx)
	cdone := make(chan struct{})
	go func() { c2.Run(cctx); close(cdone) }()
	select {
	case <-c2.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("the newcomer never read the topic's history")
	}
	if _, ok := find(c2.Instances(), "ghost"); !ok {
		t.Errorf("the newcomer does not know the instances heard from before it started: %v", c2.Instances())
	}
	waitUntil(t, "the newcomer to see a and b up", func() bool {
		ia, oka := find(c2.Instances(), "a")
		ib, okb := find(c2.Instances(), "b")
		return oka && okb && ia.Up && ib.Up
	})

	// b stops cleanly: stopped, not down, and its paths leave.
	bcancel()
	<-bdone
	waitUntil(t, "a to see b stopped", func() bool { in, _ := find(a.Instances(), "b"); return in.Stopped && !in.Up })
	for _, r := range a.PeerRows() {
		if r.Instance == "b" {
			t.Errorf("a stopped instance's row: %+v", r)
		}
	}
	acancel()
	ccancel()
	<-adone
	<-cdone
}
