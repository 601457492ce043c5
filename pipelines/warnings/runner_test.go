package warnings

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"citybrain/internal/auth"
	"citybrain/internal/broker"
	"citybrain/schemas"
	"citybrain/warehouse"
)

func produce(t *testing.T, ctx context.Context, client *broker.Client, s *schemas.Schema, recs []schemas.Record) {
	t.Helper()
	w := client.Writer("raw." + s.Name)
	defer w.Close()
	var msgs []kafka.Message
	for _, r := range recs {
		msgs = append(msgs, kafka.Message{Value: s.Encode(nil, r)})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func lakeCount(t *testing.T, ctx context.Context, lake *warehouse.Lake, q string) int64 {
	eng, err := warehouse.NewEngine(ctx, lake)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	rows, err := eng.Query(ctx, q)
	if err != nil {
		return -1
	}
	defer rows.Close()
	var n int64
	for rows.Next() {
		rows.Scan(&n)
	}
	return n
}

// TestStreamingKafkaToLakeAndAPI: records produced to the embedded broker
// become transitions in the API, the SSE stream and marts.warnings; a
// restart resumes from the stored offsets without raising twice or writing
// a transition twice; departments see only their kinds.
func TestStreamingKafkaToLakeAndAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the embedded broker and a lake")
	}
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	emb, err := broker.StartEmbedded(dir, 0, log)
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	client := broker.NewClient([]string{emb.Addr()}, broker.DefaultConfig())
	if err := client.EnsureTopics(ctx, "raw.mobile_signal"); err != nil {
		t.Fatal(err)
	}
	lake, err := warehouse.Open(ctx, warehouse.DefaultConfig(), filepath.Join(dir, "lake"), log)
	if err != nil {
		t.Fatal(err)
	}
	defer lake.Close()
	reg, _ := schemas.Builtin()
	ms, _ := reg.Get("mobile_signal")
	cfg := observedOnly()
	state := filepath.Join(dir, "warnings")

	start := func() (*Local, context.CancelFunc, chan error) {
		l, err := NewLocal(ctx, cfg, state, lake, client, reg, DefaultTopics(), log)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Eng.LoadReference(ctx, testReference()); err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- l.Run(rctx) }()
		return l, cancel, done
	}
	l, cancel, done := start()

	st, err := auth.Open(auth.Config{UsersFile: "users.json", SessionTTL: time.Hour, SuppressBelow: 10, DemoUsers: true, Departments: auth.DefaultConfig().Departments}, dir)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	(&API{Eng: l.Eng, Hub: l.Hub, Auth: st}).Mount(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	get := func(path, user string) (*http.Response, error) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if user != "" {
			req.SetBasicAuth(user, auth.DemoPassword)
		}
		return http.DefaultClient.Do(req)
	}
	// SSE as admin, before the records arrive.
	resp, err := get("/api/warnings/stream", "admin")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("stream: %v %v", resp, err)
	}
	events := make(chan Transition, 16)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		event := ""
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "event: ") {
				event = strings.TrimPrefix(line, "event: ")
			}
			if strings.HasPrefix(line, "data: ") && event == "warning" {
				var tr Transition
				json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &tr)
				events <- tr
			}
		}
	}()
	defer resp.Body.Close()

	produce(t, ctx, client, ms, []schemas.Record{signalRec("c1", testT0, 3500), signalRec("c2", testT0, 7000)})
	var ev Transition
	select {
	case ev = <-events:
	case <-time.After(20 * time.Second):
		t.Fatal("no SSE event")
	}
	if ev.State != "raised" {
		t.Errorf("first event %+v", ev)
	}
	// API: 401 without login; admin sees crowd; the water department does not.
	if r, _ := get("/api/warnings", ""); r.StatusCode != 401 {
		t.Errorf("anonymous: %d, want 401", r.StatusCode)
	}
	list := func(user string) []Transition {
		r, err := get("/api/warnings", user)
		if err != nil || r.StatusCode != 200 {
			t.Fatalf("list as %s: %v %v", user, r.StatusCode, err)
		}
		defer r.Body.Close()
		var body struct{ Warnings []Transition }
		json.NewDecoder(r.Body).Decode(&body)
		return body.Warnings
	}
	if ws := list("admin"); len(ws) == 0 || ws[0].Kind != "crowd" {
		t.Errorf("admin sees %+v", ws)
	}
	if ws := list("dept_water"); len(ws) != 0 {
		t.Errorf("water department sees crowd warnings: %+v", ws)
	}
	waitFor(t, "marts.warnings", 20*time.Second, func() bool {
		return lakeCount(t, ctx, lake, "SELECT count(*) FROM marts.warnings WHERE state = 'raised'") >= 1
	})

	// Restart: same state directory, next interval escalates the same warning.
	cancel()
	<-done
	l, cancel, done = start()
	produce(t, ctx, client, ms, []schemas.Record{signalRec("c1", testT0.Add(5*time.Minute), 4000), signalRec("c2", testT0.Add(5*time.Minute), 8200)})
	waitFor(t, "escalation in marts.warnings", 20*time.Second, func() bool {
		return lakeCount(t, ctx, lake, "SELECT count(*) FROM marts.warnings WHERE state = 'escalated' AND subject_id = 'V1'") == 1
	})
	cancel()
	<-done
	if n := lakeCount(t, ctx, lake, "SELECT count(*) FROM marts.warnings WHERE state = 'raised' AND subject_id = 'V1'"); n != 1 {
		t.Errorf("V1 raised %d times, want once", n)
	}
	if n := lakeCount(t, ctx, lake, "SELECT count(*) - count(DISTINCT seq) FROM marts.warnings"); n != 0 {
		t.Errorf("%d transitions written twice", n)
	}
	if l.Runner.Stats.Records.Load() != 2 {
		t.Errorf("second run read %d records, want the 2 new ones (resumed from stored offsets)", l.Runner.Stats.Records.Load())
	}
}
