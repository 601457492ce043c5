package sim

import (
	"errors"
	"fmt"
	"time"
)

// Config is the simulator's section of citybrain.yaml (key "sim"). Every
// count defaults to the figure of the district's urban-safety plan; all of
// them are multiplied by Scale.
type Config struct {
	// Enabled runs the simulator inside citybrain serve; default false.
	Enabled bool `yaml:"enabled"`
	// Seed makes the world and every feed reproducible: the same seed,
	// scale, counts and start give byte-identical output.
	Seed int64 `yaml:"seed"`
	// Scale is 1 (Xicheng), 10 or 100 (≈ Beijing-wide: 16 districts,
	// ~262k grid cells); counts are multiplied by it.
	Scale int `yaml:"scale"`
	// OutDir receives the world (reference CSVs), the file-drop feeds and
	// ground_truth.jsonl; default <data_dir>/sim.
	OutDir string `yaml:"out_dir"`
	// Start is the simulated time at which live feeds begin (RFC 3339);
	// history is backfilled before it. Empty: the wall clock at start-up,
	// rounded down to 5 minutes.
	Start string `yaml:"start"`
	// BackfillDays of history generated before Start; default 7.
	BackfillDays int `yaml:"backfill_days"`
	// Clock is realtime (one simulated second per second) or accelerated
	// (Speed simulated seconds per second); default accelerated.
	Clock string `yaml:"clock"`
	// Speed of the accelerated clock; default 1440 (a simulated day a minute).
	Speed float64 `yaml:"speed"`
	// Tick is how often (wall time) the live feeds are advanced; default 2s.
	Tick time.Duration `yaml:"tick"`
	// WeatherFile is the real Guanyuan hourly file replayed on the
	// simulated clock.
	WeatherFile string `yaml:"weather_file"`
	// Holidays are extra public holidays (YYYY-MM-DD) besides 1 Jan, 1–5 May
	// and 1–7 Oct.
	Holidays []string `yaml:"holidays"`
	// MQTT is where water telemetry is published.
	MQTT MQTTConfig `yaml:"mqtt"`
	// PoliceDSN, when set (or CITYBRAIN_SIM_POLICE_DSN), puts police cases
	// into the PostgreSQL table sim_police_cases instead of file drops.
	PoliceDSN string `yaml:"police_dsn"`
	// Counts of the world's entities.
	Counts Counts `yaml:"counts"`
	// Rates of the live feeds.
	Rates Rates `yaml:"rates"`
}

// MQTTConfig says where the water feed is published.
type MQTTConfig struct {
	// Embedded starts an MQTT broker (mochi-mqtt) on Addr; default true.
	Embedded *bool `yaml:"embedded"`
	// Addr of the embedded broker; default 127.0.0.1:18830.
	Addr string `yaml:"addr"`
	// Broker is the URL published to when not embedded (tcp://host:1883).
	Broker string `yaml:"broker"`
	// TopicPrefix: each sensor publishes to <prefix>/<sensor_id>; default
	// xicheng/water.
	TopicPrefix string `yaml:"topic_prefix"`
}

// Counts are the world's entities at scale 1.
type Counts struct {
	Population           int     `yaml:"population"`
	Communities          int     `yaml:"communities"`
	GridMetres           float64 `yaml:"grid_metres"`
	Units                int     `yaml:"units"`
	RiskEnterprises      int     `yaml:"risk_enterprises"`
	RiskSources          int     `yaml:"risk_sources"`
	InsuredShare         float64 `yaml:"insured_share"`
	Inspectors           int     `yaml:"inspectors"`
	Shelters             int     `yaml:"shelters"`
	SmallFireStations    int     `yaml:"small_fire_stations"`
	MicroFireStations    int     `yaml:"micro_fire_stations"`
	WaterloggingPoints   int     `yaml:"waterlogging_points"`
	PipeSensors          int     `yaml:"pipe_sensors"`
	TrafficSegments      int     `yaml:"traffic_segments"`
	SpecialHQs           int     `yaml:"special_hqs"`
	ChargingPerCommunity int     `yaml:"charging_per_community"`
}

// Rates of the event feeds per simulated day at scale 1, and the
// intervals of the periodic ones.
type Rates struct {
	CityEventsPerDay     float64       `yaml:"city_events_per_day"`
	EmergencyCallsPerDay float64       `yaml:"emergency_calls_per_day"`
	PoliceCasesPerDay    float64       `yaml:"police_cases_per_day"`
	PermitsPerDay        float64       `yaml:"permits_per_day"`
	MobileInterval       time.Duration `yaml:"mobile_interval"`
	WaterInterval        time.Duration `yaml:"water_interval"`
	TrafficInterval      time.Duration `yaml:"traffic_interval"`
}

// DefaultConfig is the plan's figures at scale 1, disabled.
func DefaultConfig() Config {
	return Config{
		Seed:         20210101,
		Scale:        1,
		BackfillDays: 7,
		Clock:        ClockAccelerated,
		Speed:        1440,
		Tick:         2 * time.Second,
		WeatherFile:  "testdata/real/weather/PRSA_Data_Guanyuan_20130301-20170228.csv",
		MQTT:         MQTTConfig{Addr: "127.0.0.1:18830", TopicPrefix: "xicheng/water"},
		Counts: Counts{
			Population:           1106000,
			Communities:          263,
			GridMetres:           250,
			Units:                24000,
			RiskEnterprises:      6150,
			RiskSources:          20759,
			InsuredShare:         0.45,
			Inspectors:           829,
			Shelters:             42,
			SmallFireStations:    26,
			MicroFireStations:    1011,
			WaterloggingPoints:   40,
			PipeSensors:          90,
			TrafficSegments:      120,
			SpecialHQs:           12,
			ChargingPerCommunity: 4,
		},
		Rates: Rates{
			CityEventsPerDay:     400,
			EmergencyCallsPerDay: 120,
			PoliceCasesPerDay:    150,
			PermitsPerDay:        6,
			MobileInterval:       5 * time.Minute,
			WaterInterval:        15 * time.Minute,
			TrafficInterval:      5 * time.Minute,
		},
	}
}

// Clock kinds.
const (
	ClockRealtime    = "realtime"
	ClockAccelerated = "accelerated"
)

// Validate checks the section.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf("sim."+format, a...)) }
	switch c.Scale {
	case 1, 10, 100:
	default:
		bad("scale %d: 取值 1、10 或 100 / want 1, 10 or 100", c.Scale)
	}
	if c.Start != "" {
		if _, err := time.Parse(time.RFC3339, c.Start); err != nil {
			bad("start %q: 需 RFC 3339 时间 / want an RFC 3339 time such as 2026-10-01T08:00:00+08:00", c.Start)
		}
	}
	if c.BackfillDays < 0 || c.BackfillDays > 366 {
		bad("backfill_days %d: 0–366", c.BackfillDays)
	}
	if c.Clock != ClockRealtime && c.Clock != ClockAccelerated {
		bad("clock %q: want realtime or accelerated", c.Clock)
	}
	if c.Clock == ClockAccelerated && c.Speed <= 0 {
		bad("speed %v: must be positive", c.Speed)
	}
	if c.Tick <= 0 {
		bad("tick %v: must be positive", c.Tick)
	}
	for _, h := range c.Holidays {
		if _, err := time.Parse("2006-01-02", h); err != nil {
			bad("holidays %q: want YYYY-MM-DD", h)
		}
	}
	k := c.Counts
	if k.Units <= 0 || k.RiskEnterprises < 0 || k.RiskEnterprises > k.Units || k.RiskSources < k.RiskEnterprises {
		bad("counts: need units > 0, risk_enterprises ≤ units and risk_sources ≥ risk_enterprises (got %d, %d, %d)", k.Units, k.RiskEnterprises, k.RiskSources)
	}
	if k.InsuredShare < 0 || k.InsuredShare > 1 {
		bad("counts.insured_share %v: 0–1", k.InsuredShare)
	}
	if k.GridMetres < 50 || k.GridMetres > 5000 {
		bad("counts.grid_metres %v: 50–5000", k.GridMetres)
	}
	if k.Communities < 15 || k.Inspectors < 1 || k.Population < 1 || k.PipeSensors < 1 || k.WaterloggingPoints < 1 || k.TrafficSegments < 1 || k.SpecialHQs < 1 {
		bad("counts: communities ≥ 15 and inspectors, population, pipe_sensors, waterlogging_points, traffic_segments, special_hqs ≥ 1")
	}
	r := c.Rates
	if r.MobileInterval < time.Minute || r.WaterInterval < time.Minute || r.TrafficInterval < time.Minute {
		bad("rates: intervals must be at least 1m")
	}
	if r.CityEventsPerDay < 0 || r.EmergencyCallsPerDay < 0 || r.PoliceCasesPerDay < 0 || r.PermitsPerDay < 0 {
		bad("rates: per-day rates must not be negative")
	}
	return errors.Join(errs...)
}

// EmbeddedMQTT reports whether the simulator starts its own MQTT broker.
func (c Config) EmbeddedMQTT() bool {
	return c.MQTT.Broker == "" && (c.MQTT.Embedded == nil || *c.MQTT.Embedded)
}
