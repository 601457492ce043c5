// Package instances makes several citybrain serve processes one platform
// (docs/roles.md): each instance publishes a heartbeat — its name, roles,
// HTTP address, and the freshness of the paths it runs — every few seconds
// to the Kafka topic citybrain.instances, keyed by its name, and follows
// the topic to know the others. status, /metrics and 数据健康 then show
// every instance's paths, and an instance that went silent (three missed
// heartbeats) as down, its paths stale: a killed warnings instance is an
// alarm on every instance, not a silence.
//
// The embedded one-process platform runs it too (one instance, itself).
package instances

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sort"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"citybrain/internal/broker"
	"citybrain/internal/freshness"
)

// Topic is where the heartbeats go.
const Topic = "citybrain.instances"

// DefaultInterval is how often an instance publishes its heartbeat.
const DefaultInterval = 5 * time.Second

// missed is how many heartbeats an instance may miss before it is down.
const missed = 3

// Info is one instance's heartbeat.
type Info struct {
	Name    string    `json:"name"`
	Roles   []string  `json:"roles"`
	Version string    `json:"version,omitempty"`
	HTTP    string    `json:"http,omitempty"`
	Started time.Time `json:"started"`
	// At is when the heartbeat was sent.
	At time.Time `json:"at"`
	// Interval is the instance's heartbeat interval (down after 3 missed).
	IntervalS float64 `json:"interval_s"`
	// Stopped: the instance said goodbye (a clean stop).
	Stopped bool `json:"stopped,omitempty"`
	// Paths is the freshness of the paths the instance runs.
	Paths []freshness.Row `json:"paths,omitempty"`
	// Partitions are the Kafka partitions the instance reads, by topic
	// and role ("lakewriter" → raw.weather → [0 1 2]).
	Partitions map[string]map[string][]int `json:"partitions,omitempty"`

	// Up and Self are set by the registry when it lists instances.
	Up   bool `json:"up"`
	Self bool `json:"self,omitempty"`
}

// Registry publishes this instance's heartbeat and follows the others'.
type Registry struct {
	client   *broker.Client
	self     Info
	interval time.Duration
	rows     func() []freshness.Row
	parts    func() map[string]map[string][]int
	log      *slog.Logger
	now      func() time.Time

	mu    sync.Mutex
	peers map[string]Info
	ready chan struct{} // closed once the topic's history was read
	once  sync.Once
}

// New makes the registry of the instance self (Name, Roles, HTTP set by
// the caller); rows reports its paths' freshness at each heartbeat.
func New(client *broker.Client, self Info, interval time.Duration, rows func() []freshness.Row, log *slog.Logger) *Registry {
	if interval <= 0 {
		interval = DefaultInterval
	}
	if self.Version == "" {
		self.Version = Version()
	}
	if self.Started.IsZero() {
		self.Started = time.Now()
	}
	self.IntervalS = interval.Seconds()
	return &Registry{client: client, self: self, interval: interval, rows: rows, log: log, now: time.Now, peers: map[string]Info{}, ready: make(chan struct{})}
}

// Version is the build's module version and VCS revision, when known.
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 7 {
			v += " " + s.Value[:7]
		}
	}
	return v
}

// SetPartitions reports, at each heartbeat, the partitions the instance
// reads per role and topic (call before Run).
func (r *Registry) SetPartitions(fn func() map[string]map[string][]int) { r.parts = fn }

// Name is this instance's name.
func (r *Registry) Name() string { return r.self.Name }

// Run publishes heartbeats and follows the topic until ctx ends, then says
// goodbye (so the others show a clean stop, not a silence).
func (r *Registry) Run(ctx context.Context) error {
	if err := r.client.EnsureTopics(ctx, Topic); err != nil {
		return err
	}
	w := r.client.Writer(Topic)
	w.RequiredAcks = kafka.RequireOne
	w.MaxAttempts = 3
	defer w.Close()
	parts, err := r.client.Partitions(ctx, Topic)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	pending := sync.WaitGroup{}
	for _, p := range parts[Topic] {
		wg.Add(1)
		pending.Add(1)
		go func() {
			defer wg.Done()
			r.follow(ctx, p, pending.Done)
		}()
	}
	go func() { pending.Wait(); r.once.Do(func() { close(r.ready) }) }()
	tick := time.NewTicker(r.interval)
	defer tick.Stop()
	for {
		if err := r.publish(ctx, w, false); err != nil && ctx.Err() == nil {
			r.log.Warn("实例心跳发送失败 instance heartbeat not sent; retrying at the next one", "instance", r.self.Name, "err", err)
		}
		select {
		case <-ctx.Done():
			bye, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			r.publish(bye, w, true)
			cancel()
			wg.Wait()
			return nil
		case <-tick.C:
		}
	}
}

func (r *Registry) publish(ctx context.Context, w *kafka.Writer, stopped bool) error {
	hb := r.self
	hb.At = r.now()
	hb.Stopped = stopped
	if r.rows != nil {
		hb.Paths = r.rows()
	}
	if r.parts != nil && !stopped {
		hb.Partitions = r.parts()
	}
	b, err := json.Marshal(hb)
	if err != nil {
		return err
	}
	r.record(hb)
	return w.WriteMessages(ctx, kafka.Message{Key: []byte(hb.Name), Value: b})
}

// follow reads one partition of the topic: the recent history first (the
// last 2,000 heartbeats: minutes of a large deployment), then live.
func (r *Registry) follow(ctx context.Context, p int, caughtUp func()) {
	var once sync.Once
	defer once.Do(caughtUp)
	for ctx.Err() == nil {
		start, err1 := r.client.StartOffsets(ctx, Topic)
		end, err2 := r.client.EndOffsets(ctx, Topic)
		if err1 != nil || err2 != nil {
			r.log.Debug("instances topic offsets", "err1", err1, "err2", err2)
			sleep(ctx, r.interval)
			continue
		}
		off := max(start[p], end[p]-2000)
		if end[p] == start[p] {
			once.Do(caughtUp)
		}
		err := r.client.ReadPartition(ctx, Topic, p, off, 1<<20, r.interval, func(msgs []kafka.Message) error {
			for _, m := range msgs {
				var hb Info
				if json.Unmarshal(m.Value, &hb) == nil && hb.Name != "" {
					r.record(hb)
				}
				if m.Offset+1 >= end[p] {
					once.Do(caughtUp)
				}
			}
			return nil
		})
		if err != nil && ctx.Err() == nil {
			r.log.Debug("instances topic read; reading again", "partition", p, "err", err)
			sleep(ctx, r.interval)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func (r *Registry) record(hb Info) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.peers[hb.Name]; ok && old.At.After(hb.At) {
		return // an older heartbeat read late (another partition, history)
	}
	r.peers[hb.Name] = hb
}

// Ready is closed once the topic's recent history was read (so a status
// asked right after start lists the instances already running).
func (r *Registry) Ready() <-chan struct{} { return r.ready }

// Instances lists every instance heard from, this one included, by name.
func (r *Registry) Instances() []Info {
	now := r.now()
	r.mu.Lock()
	out := make([]Info, 0, len(r.peers)+1)
	seen := false
	for _, hb := range r.peers {
		if hb.Name == r.self.Name {
			seen = true
			hb.Self = true
			hb.Up = true
			hb.Stopped = false
		} else {
			iv := time.Duration(hb.IntervalS * float64(time.Second))
			if iv <= 0 {
				iv = DefaultInterval
			}
			hb.Up = !hb.Stopped && now.Sub(hb.At) < missed*iv
		}
		out = append(out, hb)
	}
	r.mu.Unlock()
	if !seen {
		s := r.self
		s.Self, s.Up, s.At = true, true, now
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// PeerRows is the freshness of the other instances' paths, each with its
// instance: an instance that is down shows its paths as it last reported
// them, in error ("instance down since …"), and one row for itself. A
// cleanly stopped instance is left out after its goodbye.
func (r *Registry) PeerRows() []freshness.Row {
	var out []freshness.Row
	for _, in := range r.Instances() {
		if in.Self || in.Stopped {
			continue
		}
		for _, row := range in.Paths {
			row.Instance = in.Name
			if !in.Up {
				row.Level = "error"
				row.Err = downText(in)
			}
			out = append(out, row)
		}
		if !in.Up {
			out = append(out, freshness.Row{State: freshness.State{Path: freshness.Path{Component: "instance", Name: in.Name}, Err: downText(in), Updated: in.At}, Level: "error", Instance: in.Name})
		}
	}
	return out
}

func downText(in Info) string {
	return fmt.Sprintf("实例失联 instance %s (%v) silent since %s: its paths are not running; restart it or move its roles", in.Name, in.Roles, in.At.Format(time.RFC3339))
}
