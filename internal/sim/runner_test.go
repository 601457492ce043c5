package sim

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"citybrain/internal/testenv"
)

// subscriber collects every MQTT message under prefix/#.
type subscriber struct {
	mu   sync.Mutex
	msgs map[string][]byte // topic + seq → payload
}

func subscribe(t *testing.T, url, prefix string) *subscriber {
	t.Helper()
	s := &subscriber{msgs: map[string][]byte{}}
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("sim-test-%d", time.Now().UnixNano())).SetCleanSession(true))
	if tok := c.Connect(); tok.WaitTimeout(10*time.Second) && tok.Error() != nil || !c.IsConnected() {
		t.Fatalf("connect %s: %v", url, tok.Error())
	}
	tok := c.Subscribe(prefix+"/#", 1, func(_ paho.Client, m paho.Message) {
		var w WaterMsg
		json.Unmarshal(m.Payload(), &w)
		s.mu.Lock()
		s.msgs[fmt.Sprintf("%s#%d", m.Topic(), w.Seq)] = append([]byte(nil), m.Payload()...)
		s.mu.Unlock()
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return s
}

func (s *subscriber) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs)
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// runLive runs a runner until its water feed reached the live start plus
// some simulated hours, then stops it and returns it.
func runLive(t *testing.T, r *Runner, mkSub func() *subscriber) *subscriber {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	time.Sleep(time.Second) // the subscriber comes late: nothing may be lost
	sub := mkSub()
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		r.mu.RLock()
		served := r.served
		r.mu.RUnlock()
		if served.After(r.st.Start.Add(3*time.Hour)) && r.state().WaterUntil.After(r.st.Start) && sub.count() >= expectWater(r) {
			break
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return sub
}

// expectWater is the number of messages for the intervals published so far.
func expectWater(r *Runner) int {
	n := 0
	eachEnd(r.st.Epoch, r.state().WaterUntil, r.Cfg.Rates.WaterInterval, func(time.Time) { n += len(r.Sim.W.Sensors) })
	return n
}

func liveConfig() Config {
	c := testConfig()
	c.Start = testUntil.Format(time.RFC3339)
	c.BackfillDays = 1
	c.Speed = 36000 // ten simulated hours a second
	c.Tick = 100 * time.Millisecond
	return c
}

// checkWater compares what the broker delivered with the feed, byte for byte.
func checkWater(t *testing.T, r *Runner, sub *subscriber) {
	t.Helper()
	sub.mu.Lock()
	msgs := make(map[string][]byte, len(sub.msgs))
	for k, v := range sub.msgs {
		msgs[k] = v
	}
	sub.mu.Unlock()
	want := 0
	eachEnd(r.st.Epoch, r.st.WaterUntil, r.Cfg.Rates.WaterInterval, func(tm time.Time) {
		for _, m := range r.Sim.WaterMsgs(tm) {
			want++
			got, ok := msgs[fmt.Sprintf("%s/%s#%d", r.Cfg.MQTT.TopicPrefix, m.SensorID, m.Seq)]
			if !ok {
				t.Fatalf("no message of %s at %s", m.SensorID, m.ObservedAt)
			}
			if string(got) != string(m.JSON()) {
				t.Fatalf("message of %s at %s: %s, want %s", m.SensorID, m.ObservedAt, got, m.JSON())
			}
		}
	})
	// a publish cut short by the stop may have delivered a few messages past
	// WaterUntil (a restart sends them again; the connector drops repeated seq)
	if want < 24*4*len(r.Sim.W.Sensors) || len(msgs) < want || len(msgs) > want+5000 {
		t.Errorf("%d messages delivered, %d expected (a day of history and more)", len(msgs), want)
	}
}

func TestLiveFeedsMosquittoAndPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Mosquitto and PostgreSQL")
	}
	ctx := context.Background()
	mq, err := testenv.StartMosquitto(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer mq.Stop()
	pg, err := testenv.StartPostgres(ctx, filepath.Join(os.TempDir(), fmt.Sprintf("simpg%d", time.Now().UnixNano()%1e6)))
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Stop()
	cfg := liveConfig()
	cfg.MQTT.Broker = mq.Addr()
	cfg.PoliceDSN = pg.DSN()
	dir := t.TempDir()
	r, err := NewRunner(cfg, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(func() http.Handler { m := http.NewServeMux(); r.Mount(m); return m }())
	defer srv.Close()
	// an external broker keeps nothing for a subscriber that is not there yet:
	// subscribe before the history is published
	sub0 := subscribe(t, mq.Addr(), cfg.MQTT.TopicPrefix)
	sub := runLive(t, r, func() *subscriber { return sub0 })
	checkWater(t, r, sub)

	// police: every case of the emitted hours is in PostgreSQL, none twice
	db, err := sql.Open("pgx", pg.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	want := 0
	eachEnd(r.st.Epoch, r.st.Emitted, time.Hour, func(tm time.Time) { want += len(r.Sim.PoliceRows(tm)) })
	var got, distinct int
	if err := db.QueryRow(`select count(*), count(distinct case_id) from `+PoliceTable).Scan(&got, &distinct); err != nil {
		t.Fatal(err)
	}
	if got != want || distinct != want || want < 100 {
		t.Errorf("PostgreSQL holds %d police cases (%d distinct), the feed has %d", got, distinct, want)
	}
	if fs, _ := filepath.Glob(filepath.Join(dir, FeedsDir, FeedPolice, "*.csv")); len(fs) != 0 {
		t.Errorf("police went to PostgreSQL but %d files were dropped too", len(fs))
	}

	// Open311: paging through the endpoint gives every request up to the served time, once
	served := r.Served()
	wantReq := map[string]bool{}
	eachEnd(r.st.Epoch, served, time.Hour, func(tm time.Time) {
		for _, e := range r.Sim.CityEvents(tm) {
			if e.Requested.Before(served) {
				wantReq[e.ID] = true
			}
		}
	})
	seen := map[string]bool{}
	for page := 1; ; page++ {
		var reqs []map[string]any
		getJSON(t, fmt.Sprintf("%s%s?start_date=%s&page=%d&page_size=50", srv.URL, Open311Path, url.QueryEscape(r.st.Epoch.Format(time.RFC3339)), page), &reqs)
		if len(reqs) == 0 {
			break
		}
		for _, q := range reqs {
			id := q["service_request_id"].(string)
			if seen[id] || !wantReq[id] {
				t.Fatalf("request %s repeated or unexpected", id)
			}
			seen[id] = true
		}
	}
	if len(seen) != len(wantReq) || len(seen) < 300 {
		t.Errorf("Open311 served %d requests, the feed has %d", len(seen), len(wantReq))
	}
	// emergency calls: cursor pagination
	calls, cursor := 0, ""
	for {
		var page struct {
			Data       []Call  `json:"data"`
			NextCursor *string `json:"next_cursor"`
		}
		getJSON(t, fmt.Sprintf("%s%s?limit=37&cursor=%s", srv.URL, CallsPath, cursor), &page)
		calls += len(page.Data)
		if page.NextCursor == nil {
			break
		}
		cursor = *page.NextCursor
	}
	wantCalls := 0
	eachEnd(r.st.Epoch, served, time.Hour, func(tm time.Time) { wantCalls += len(r.Sim.Calls(tm)) })
	if calls != wantCalls || calls < 50 {
		t.Errorf("calls API served %d calls, the feed has %d", calls, wantCalls)
	}
	var bad map[string]any
	resp, err := http.Get(srv.URL + Open311Path + "?start_date=yesterday")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&bad)
	resp.Body.Close()
	if resp.StatusCode != 400 || bad["description"] == nil {
		t.Errorf("bad start_date: status %d %v, want 400 with a description", resp.StatusCode, bad)
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// The embedded broker: history waits for the subscriber, then arrives whole;
// a restart continues the timeline without repeating history.
func TestLiveFeedsEmbeddedBrokerAndRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the live simulator")
	}
	ctx := context.Background()
	cfg := liveConfig()
	cfg.MQTT.Addr = freeAddr(t)
	b, err := StartBroker(cfg.MQTT.Addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	dir := t.TempDir()
	r, err := NewRunner(cfg, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Broker = b
	if err := r.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	sub := runLive(t, r, func() *subscriber { return subscribe(t, b.URL(), cfg.MQTT.TopicPrefix) })
	checkWater(t, r, sub)
	first := r.st
	files1, _ := filepath.Glob(filepath.Join(dir, FeedsDir, FeedMobile, "*.csv"))

	r2, err := NewRunner(cfg, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !r2.st.Epoch.Equal(first.Epoch) || !r2.st.Emitted.Equal(first.Emitted) {
		t.Fatalf("restart lost the timeline: %+v, was %+v", r2.st, first)
	}
	cfg2 := cfg
	cfg2.Seed++
	if _, err := NewRunner(cfg2, dir, nil); err == nil {
		t.Error("a runner with another seed accepted the directory")
	}
	// mobile-signal windows are contiguous and never repeated across files
	seen := map[string]bool{}
	for _, f := range files1 {
		_, rows := readCSV(t, f)
		for _, row := range rows {
			k := row[0] + row[1]
			if seen[k] {
				t.Fatalf("window %s of %s twice", row[1], row[0])
			}
			seen[k] = true
		}
	}
	wantWindows := 0
	eachEnd(first.Epoch, first.Emitted, cfg.Rates.MobileInterval, func(time.Time) { wantWindows++ })
	if len(seen) != wantWindows*len(r.Sim.W.Cells) {
		t.Errorf("%d cell-windows in files, want %d", len(seen), wantWindows*len(r.Sim.W.Cells))
	}
	// the venue counts written live (backfilled history, then the clock) are the rows a separate
	// simulator with the same seed and epoch generates for the same intervals, each once
	fresh, err := New(cfg, first.Epoch)
	if err != nil {
		t.Fatal(err)
	}
	live := map[string][]string{}
	vfiles, _ := filepath.Glob(filepath.Join(dir, FeedsDir, FeedVenue, "*.csv"))
	for _, f := range vfiles {
		_, rows := readCSV(t, f)
		for _, row := range rows {
			k := row[0] + row[1] + row[3]
			if live[k] != nil {
				t.Fatalf("venue count %v twice", row)
			}
			live[k] = row
		}
	}
	wantRows := 0
	eachEnd(first.Epoch, first.Emitted, cfg.Rates.MobileInterval, func(tm time.Time) {
		for _, want := range fresh.VenueCountRows(tm) {
			wantRows++
			if got := live[want[0]+want[1]+want[3]]; !slices.Equal(got, want) {
				t.Fatalf("live venue count %v, a backfill gives %v", got, want)
			}
		}
	})
	if len(live) != wantRows || wantRows < 288*3*len(venueSpecs) {
		t.Errorf("%d venue-count rows written live, want %d (a day of history and more)", len(live), wantRows)
	}
}
