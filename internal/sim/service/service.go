// Package service runs the Xicheng simulator inside citybrain serve (config
// sim.enabled): it starts before the connectors, writes the world, starts
// the embedded MQTT broker, mounts the simulated department APIs on serve's
// HTTP mux (/sim/…), backfills history and then follows the simulated clock.
// It lives apart from package sim because sim's Config is part of
// internal/config, which internal/app imports.
package service

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"citybrain/internal/app"
	"citybrain/internal/sim"
)

func init() { app.RegisterService(-1, New) }

// Service is the simulator as a serve service.
type Service struct {
	cfg     sim.Config
	dir     string
	rt      *app.Runtime
	broker  *sim.Broker
	runner  *sim.Runner
	started time.Time
}

// departmentTables are the eight department sources' tables and their
// event-time columns: the demo is ready when each holds the history up to
// the last day before the live clock started.
var departmentTables = []struct{ table, col string }{
	{"raw.mobile_signal", "window_start"}, {"raw.water_telemetry", "observed_at"}, {"raw.weather", "observed_at"},
	{"raw.city_events", "requested_at"}, {"raw.incidents", "received_at"}, {"raw.police_cases", "occurred_at"},
	{"raw.traffic_speeds", "observed_at"}, {"raw.building_permits", "issued_at"},
}

var _ app.Service = (*Service)(nil)

// New builds the service, or nil when sim.enabled is false.
func New(rt *app.Runtime) (app.Service, error) {
	cfg := rt.App.Cfg.Sim
	if !cfg.Enabled {
		return nil, nil
	}
	dir := cfg.OutDir
	if dir == "" {
		dir = filepath.Join(rt.App.Cfg.DataDir, "sim")
	}
	return &Service{cfg: cfg, dir: dir, rt: rt, started: time.Now()}, nil
}

// Name implements app.Service.
func (s *Service) Name() string { return "sim" }

// Start writes the world, starts the broker and mounts the HTTP feeds.
func (s *Service) Start(ctx context.Context, rt *app.Runtime) error {
	log := rt.App.Log.With("service", "sim")
	r, err := sim.NewRunner(s.cfg, s.dir, log)
	if err != nil {
		return err
	}
	if s.cfg.EmbeddedMQTT() {
		b, err := sim.StartBroker(s.cfg.MQTT.Addr, log)
		if err != nil {
			return err
		}
		s.broker = b
		r.Broker = b
	}
	if err := r.Prepare(ctx); err != nil {
		if s.broker != nil {
			s.broker.Close()
		}
		return err
	}
	s.runner = r
	if s.broker != nil {
		// the embedded broker lost whatever it had not delivered when the
		// last serve stopped: publish again from what the lake holds
		var last *time.Time
		if rows, err := rt.Engine.Query(ctx, "select max(observed_at) from raw.water_telemetry"); err == nil {
			if rows.Next() {
				rows.Scan(&last)
			}
			rows.Close()
		}
		if last != nil {
			r.RewindWater(*last)
		} else {
			r.RewindWater(r.Epoch())
		}
	}
	// The feeds answer the platform's users and the http connectors, which
	// send the token of CITYBRAIN_SIM_TOKEN (citybrain.yaml: auth.token_env):
	// set it to choose the token, else one is made for this run and put in
	// serve's environment before the connectors start.
	r.Token = os.Getenv(sim.TokenEnv)
	if r.Token == "" {
		r.Token = rand.Text()
		if err := os.Setenv(sim.TokenEnv, r.Token); err != nil {
			return err
		}
	}
	if rt.Auth != nil {
		r.Users = rt.Auth
	}
	r.Mount(rt.Mux)
	rt.Banner(fmt.Sprintf("Simulator 西城模拟器:     %s … (clock %s ×%g, history from %s, live from %s)",
		s.dir, s.cfg.Clock, speed(s.cfg), r.Epoch().Format("2006-01-02 15:04"), r.Start().Format("2006-01-02 15:04")))
	rt.Banner(fmt.Sprintf("  ground truth 注入事件:   %s", filepath.Join(s.dir, sim.GroundTruthFile)))
	if s.broker != nil {
		rt.Banner("  MQTT 水务遥测:           " + s.broker.URL() + "  topics " + s.cfg.MQTT.TopicPrefix + "/#")
	}
	return nil
}

func speed(c sim.Config) float64 {
	if c.Clock == sim.ClockRealtime {
		return 1
	}
	return c.Speed
}

// Run backfills and follows the clock until ctx is done.
func (s *Service) Run(ctx context.Context) error {
	defer func() {
		if s.broker != nil {
			s.broker.Close()
		}
	}()
	go s.announceReady(ctx)
	return s.runner.Run(ctx)
}

// announceReady prints one line once the eight department tables hold the
// backfilled history (the figure make run is measured by).
func (s *Service) announceReady(ctx context.Context) {
	select {
	case <-s.runner.Ready():
	case <-ctx.Done():
		return
	}
	for {
		ok := true
		for _, t := range departmentTables {
			// Dense feeds must reach the last day; building permits are a few
			// a day, so any within the backfill will do.
			want := s.runner.Start().Add(-24 * time.Hour)
			if t.table == "raw.building_permits" {
				want = s.runner.Start().AddDate(0, 0, -s.cfg.BackfillDays)
			}
			var max *time.Time
			rows, err := s.rt.Engine.Query(ctx, fmt.Sprintf("select max(%s) from %s", t.col, t.table))
			if err == nil {
				if rows.Next() {
					err = rows.Scan(&max)
				}
				rows.Close()
			}
			if err != nil || max == nil || max.Before(want) {
				ok = false
				break
			}
		}
		if ok {
			msg := fmt.Sprintf("就绪 Ready: %d days of history from all eight department sources are in the lake, %.0f s after start (the simulator keeps feeding them live)",
				s.cfg.BackfillDays, time.Since(s.started).Seconds())
			fmt.Fprintln(os.Stdout, msg)
			s.rt.App.Log.Info("sim ready", "seconds", int(time.Since(s.started).Seconds()))
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
	}
}
