package warnings

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"citybrain/pipelines/warnings/forecast"
)

// Levels are the thresholds of the four warning levels (blue < yellow <
// orange < red), in the unit of the metric they apply to.
type Levels struct {
	Blue   float64 `yaml:"blue" json:"blue"`
	Yellow float64 `yaml:"yellow" json:"yellow"`
	Orange float64 `yaml:"orange" json:"orange"`
	Red    float64 `yaml:"red" json:"red"`
}

func (l Levels) validate(name string) error {
	if !(l.Blue > 0 && l.Blue <= l.Yellow && l.Yellow <= l.Orange && l.Orange <= l.Red) {
		return fmt.Errorf("warnings.%s: want 0 < blue ≤ yellow ≤ orange ≤ red, got %+v / 阈值须满足 0 < 蓝 ≤ 黄 ≤ 橙 ≤ 红", name, l)
	}
	return nil
}

// CrowdConfig sets the crowd-flow (大客流) rules.
type CrowdConfig struct {
	// DensityPerM2 are levels of people per square metre of usable area.
	DensityPerM2 Levels `yaml:"density_per_m2"`
	// CapacityRatio are levels of people / the venue's maximum capacity.
	CapacityRatio Levels `yaml:"capacity_ratio"`
	// BaselineRatio are levels of people / the usual count for that time of week.
	BaselineRatio Levels `yaml:"baseline_ratio"`
	// ExcessRatio are levels of (people − the usual count) / the venue's capacity:
	// a surge above the usual crowd, whatever else the venue's cells hold.
	ExcessRatio Levels `yaml:"excess_ratio"`
	// BaselineMinPeople: the baseline ratio counts only from this many people (small counts vary a lot).
	BaselineMinPeople int64 `yaml:"baseline_min_people"`
	// BaselineMinSamples: weeks of history a time-of-week slot needs before its baseline is used.
	BaselineMinSamples int `yaml:"baseline_min_samples"`
	// SlotMinutes is the time-of-week slot of the baseline.
	SlotMinutes int `yaml:"slot_minutes"`
	// Interval is the counting interval of the mobile-signal feed.
	Interval time.Duration `yaml:"interval"`
	// Horizons are the forecast horizons in minutes.
	Horizons []int `yaml:"horizons"`
	// PersistencePerHour is how much of today's deviation from the usual
	// count the forecast keeps one hour ahead (0..1).
	PersistencePerHour float64 `yaml:"persistence_per_hour"`
	// TrendDampingPerHour is how much of the current trend is still
	// extrapolated after one hour (0..1).
	TrendDampingPerHour float64 `yaml:"trend_damping_per_hour"`
	// TZOffsetMinutes is the local time's offset from UTC used for the time of week (Beijing +480).
	TZOffsetMinutes int `yaml:"tz_offset_minutes"`
	// Holidays are public holidays ("2006-01-02"), counted as Sundays by
	// the per-site forecaster (pipelines/warnings/forecast); Workdays are
	// the adjusted working days (调休: a weekend worked), counted as Mondays.
	// The State Council publishes them each year: add the year's here.
	Holidays []string `yaml:"holidays"`
	Workdays []string `yaml:"workdays"`
	// Forecaster is the per-venue fitted forecaster of the venue-count rule.
	Forecaster ForecasterConfig `yaml:"forecaster"`
}

// ForecasterConfig sets the per-venue fitted forecaster (venueforecast.go,
// pipelines/warnings/forecast) of crowd_counts.crowd_venue.
type ForecasterConfig struct {
	// Enabled: forecast venue counts by the fitted model (false: the usual
	// count plus today's deviation, crowd_forecast, for every venue).
	Enabled bool `yaml:"enabled"`
	// HistoryDays is the venue-count history kept and fitted on.
	HistoryDays int `yaml:"history_days"`
	// MinHistoryDays is the history a venue needs before it is fitted; until
	// then its forecast is crowd_forecast's.
	MinHistoryDays int `yaml:"min_history_days"`
}

// Calendar is the forecaster's calendar of Holidays and Workdays.
func (c CrowdConfig) Calendar() forecast.Holidays {
	h := forecast.Holidays{Off: map[string]bool{}, Work: map[string]bool{}}
	for _, d := range c.Holidays {
		h.Off[d] = true
	}
	for _, d := range c.Workdays {
		h.Work[d] = true
	}
	return h
}

// RainConfig sets the rainstorm signal (暴雨预警信号): a level is reached
// when the rolling sum over Hours reaches MM.
type RainConfig struct {
	Blue   RainLevel `yaml:"blue"`
	Yellow RainLevel `yaml:"yellow"`
	Orange RainLevel `yaml:"orange"`
	Red    RainLevel `yaml:"red"`
}

// RainLevel is one rainstorm-signal threshold.
type RainLevel struct {
	Hours int     `yaml:"hours" json:"hours"`
	MM    float64 `yaml:"mm" json:"mm"`
}

// LifelineConfig sets pipe-network and gas rules.
type LifelineConfig struct {
	// PressureMinMPa and PressureMaxMPa bound normal water pressure.
	PressureMinMPa float64 `yaml:"pressure_min_mpa"`
	PressureMaxMPa float64 `yaml:"pressure_max_mpa"`
	// OutOfBand are levels of the relative distance outside the band.
	OutOfBand Levels `yaml:"out_of_band"`
	// Drop are levels of a sudden fall of pressure (or rise of flow)
	// relative to the sensor's mean over DropWindow (a burst).
	Drop       Levels        `yaml:"drop"`
	DropWindow time.Duration `yaml:"drop_window"`
	// GasLEL are levels of gas concentration in %LEL.
	GasLEL Levels `yaml:"gas_lel"`
	// WaterDepthM are levels of waterlogging depth at low points and underpasses (m).
	WaterDepthM Levels `yaml:"water_depth_m"`
}

// TrafficConfig sets traffic rules.
type TrafficConfig struct {
	// CongestionIndex are levels of the 0–10 congestion index per segment.
	CongestionIndex Levels `yaml:"congestion_index"`
	// Collisions are levels of collisions within CollisionWindow in one hot-spot cell.
	Collisions      Levels        `yaml:"collisions"`
	CollisionWindow time.Duration `yaml:"collision_window"`
	// CollisionCellDeg is the hot-spot cell size in degrees.
	CollisionCellDeg float64 `yaml:"collision_cell_deg"`
}

// Webhook notifies one responsible unit.
type Webhook struct {
	// Unit is the responsible unit (as in raw.venues.responsible_unit); "*" receives every warning.
	Unit string `yaml:"unit"`
	// URL receives a POST of the transition's JSON.
	URL string `yaml:"url"`
}

// TopicInput maps a topic onto a canonical schema.
type TopicInput struct {
	Topic  string `yaml:"topic"`
	Schema string `yaml:"schema"`
}

// Config is the warnings section of citybrain.yaml.
type Config struct {
	// Enabled runs the engine inside citybrain serve.
	Enabled bool `yaml:"enabled"`
	// RulesDir, when set, holds the rule files used instead of the embedded ones.
	RulesDir string `yaml:"rules_dir"`
	// Dir holds the engine's state (DuckDB file, dead letters); relative to data_dir.
	Dir string `yaml:"dir"`
	// Topics adds topics to read beyond raw.<source> of the configured sources.
	Topics []TopicInput `yaml:"topics"`
	// MaxBatchRows bounds one micro-batch.
	MaxBatchRows int `yaml:"max_batch_rows"`
	// BulkMinIntervals: a micro-batch holding at least this many intervals of
	// a windowed input (mobile_signal, crowd_counts) evaluates them in bulk,
	// set-based (catch-up after a first start, a restart or falling behind;
	// rules/bulk/*.sql); fewer are evaluated one interval at a time (live).
	// 0 evaluates every batch interval by interval.
	BulkMinIntervals int `yaml:"bulk_min_intervals"`
	// Hysteresis: a level is left only when the value falls this fraction below its threshold.
	Hysteresis float64 `yaml:"hysteresis"`
	// LowerAfter: a lower level must hold this long (data time) before the warning is lowered or cleared.
	LowerAfter time.Duration  `yaml:"lower_after"`
	Crowd      CrowdConfig    `yaml:"crowd"`
	Rain       RainConfig     `yaml:"rain"`
	Lifeline   LifelineConfig `yaml:"lifeline"`
	Traffic    TrafficConfig  `yaml:"traffic"`
	// Webhooks notify responsible units of every transition.
	Webhooks []Webhook `yaml:"webhooks"`
	// WebhookRetries is how many times a failed delivery is retried.
	WebhookRetries int `yaml:"webhook_retries"`
	// WebhookBackoff is the first retry's delay (doubled each time, at most 1 min).
	WebhookBackoff time.Duration `yaml:"webhook_backoff"`
	// WebhookTimeout bounds one delivery attempt.
	WebhookTimeout time.Duration `yaml:"webhook_timeout"`
	// Partitioned splits the engine into units over the input topics'
	// partitions, shared through a Kafka consumer group by every instance
	// running the warnings role (unit.go, group.go, docs/roles.md).
	Partitioned bool `yaml:"partitioned"`
	// CheckpointEvery spaces a unit's checkpoints to the lake's store; a
	// unit commits to marts.warnings what its last checkpoint covers.
	CheckpointEvery time.Duration `yaml:"checkpoint_every"`
	// SessionTimeout: an instance silent this long loses its units.
	SessionTimeout time.Duration `yaml:"session_timeout"`
}

// DefaultConfig: thresholds documented with their sources in docs/warnings.md.
func DefaultConfig() Config {
	return Config{
		Enabled:          true,
		Dir:              "warnings",
		MaxBatchRows:     300000,
		BulkMinIntervals: 4,
		Hysteresis:       0.1,
		LowerAfter:       10 * time.Minute,
		Crowd: CrowdConfig{
			DensityPerM2:        Levels{1, 2, 3, 4},
			CapacityRatio:       Levels{0.7, 0.8, 0.9, 1.0},
			BaselineRatio:       Levels{2, 3, 4, 5},
			ExcessRatio:         Levels{0.3, 0.5, 0.7, 0.9},
			BaselineMinPeople:   500,
			BaselineMinSamples:  1,
			SlotMinutes:         15,
			Interval:            5 * time.Minute,
			Horizons:            []int{15, 30, 60},
			PersistencePerHour:  0.6,
			TrendDampingPerHour: 0.2,
			TZOffsetMinutes:     480,
			Forecaster:          ForecasterConfig{Enabled: true, HistoryDays: 56, MinHistoryDays: 14},
		},
		Rain: RainConfig{Blue: RainLevel{12, 50}, Yellow: RainLevel{6, 50}, Orange: RainLevel{3, 50}, Red: RainLevel{3, 100}},
		Lifeline: LifelineConfig{
			PressureMinMPa: 0.14, PressureMaxMPa: 0.7,
			OutOfBand:   Levels{0.01, 0.15, 0.3, 0.5},
			Drop:        Levels{0.15, 0.25, 0.35, 0.5},
			DropWindow:  30 * time.Minute,
			GasLEL:      Levels{10, 20, 25, 50},
			WaterDepthM: Levels{0.1, 0.15, 0.27, 0.4},
		},
		Traffic: TrafficConfig{
			CongestionIndex:  Levels{4, 6, 8, 9},
			Collisions:       Levels{3, 5, 8, 12},
			CollisionWindow:  24 * time.Hour,
			CollisionCellDeg: 0.005,
		},
		WebhookRetries:  5,
		WebhookBackoff:  time.Second,
		WebhookTimeout:  10 * time.Second,
		CheckpointEvery: 10 * time.Second,
		SessionTimeout:  10 * time.Second,
	}
}

// Validate checks the section.
func (c Config) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("warnings.dir is required / 须设置 warnings.dir"))
	}
	if c.BulkMinIntervals < 0 {
		errs = append(errs, errors.New("warnings.bulk_min_intervals must not be negative (0 = no bulk catch-up)"))
	}
	if c.MaxBatchRows < 1 {
		errs = append(errs, errors.New("warnings.max_batch_rows must be at least 1"))
	}
	if c.Hysteresis < 0 || c.Hysteresis >= 1 {
		errs = append(errs, errors.New("warnings.hysteresis: want 0 ≤ h < 1 / 回差须在 0 到 1 之间"))
	}
	if c.LowerAfter < 0 {
		errs = append(errs, errors.New("warnings.lower_after must not be negative"))
	}
	if c.Partitioned && c.CheckpointEvery < 100*time.Millisecond {
		errs = append(errs, errors.New("warnings.checkpoint_every: want at least 100ms (a unit commits what its checkpoints cover) / 检查点间隔至少 100ms"))
	}
	if c.Partitioned && (c.SessionTimeout < 6*time.Second || c.SessionTimeout > 5*time.Minute) {
		errs = append(errs, errors.New("warnings.session_timeout: want 6s to 5m (Kafka's group.min.session.timeout.ms is 6 s) / 会话超时须在 6 秒到 5 分钟之间"))
	}
	if f := c.Crowd.Forecaster; f.Enabled && (f.MinHistoryDays < 14 || f.HistoryDays < f.MinHistoryDays) {
		errs = append(errs, errors.New("warnings.crowd.forecaster: want min_history_days ≥ 14 (a week learns the usual count of every time slot, the next fits the correction) and history_days ≥ min_history_days / 拟合预测至少需要 14 天历史"))
	}
	if iv := c.Crowd.Interval; iv > 0 {
		for _, h := range c.Crowd.Horizons {
			if time.Duration(h)*time.Minute%iv != 0 {
				errs = append(errs, fmt.Errorf("warnings.crowd.horizons: %d min is not a whole number of intervals of %s / 预测时距须为计数间隔的整数倍", h, iv))
			}
		}
	}
	for key, days := range map[string][]string{"holidays": c.Crowd.Holidays, "workdays": c.Crowd.Workdays} {
		for _, d := range days {
			if _, err := time.Parse(time.DateOnly, d); err != nil {
				errs = append(errs, fmt.Errorf("warnings.crowd.%s: %q is not a date (want YYYY-MM-DD) / 日期格式须为 YYYY-MM-DD", key, d))
			}
		}
	}
	for name, l := range map[string]Levels{"crowd.density_per_m2": c.Crowd.DensityPerM2, "crowd.capacity_ratio": c.Crowd.CapacityRatio,
		"crowd.baseline_ratio": c.Crowd.BaselineRatio, "crowd.excess_ratio": c.Crowd.ExcessRatio, "lifeline.out_of_band": c.Lifeline.OutOfBand, "lifeline.drop": c.Lifeline.Drop,
		"lifeline.gas_lel": c.Lifeline.GasLEL, "lifeline.water_depth_m": c.Lifeline.WaterDepthM,
		"traffic.congestion_index": c.Traffic.CongestionIndex, "traffic.collisions": c.Traffic.Collisions} {
		errs = append(errs, l.validate(name))
	}
	cr := c.Crowd
	if cr.SlotMinutes < 1 || 10080%cr.SlotMinutes != 0 {
		errs = append(errs, errors.New("warnings.crowd.slot_minutes must divide a week (e.g. 5, 15, 60)"))
	}
	if cr.Interval < time.Minute {
		errs = append(errs, errors.New("warnings.crowd.interval must be at least 1m"))
	}
	if len(cr.Horizons) == 0 {
		errs = append(errs, errors.New("warnings.crowd.horizons: give at least one horizon in minutes"))
	}
	for _, h := range cr.Horizons {
		if h <= 0 || h > 24*60 {
			errs = append(errs, fmt.Errorf("warnings.crowd.horizons: %d min is out of 1..1440", h))
		}
	}
	if cr.PersistencePerHour < 0 || cr.PersistencePerHour > 1 || cr.TrendDampingPerHour < 0 || cr.TrendDampingPerHour >= 1 {
		errs = append(errs, errors.New("warnings.crowd: persistence_per_hour in 0..1, trend_damping_per_hour in 0..<1"))
	}
	for name, r := range map[string]RainLevel{"blue": c.Rain.Blue, "yellow": c.Rain.Yellow, "orange": c.Rain.Orange, "red": c.Rain.Red} {
		if r.Hours < 1 || r.Hours > 72 || r.MM <= 0 {
			errs = append(errs, fmt.Errorf("warnings.rain.%s: want hours in 1..72 and mm > 0, got %+v", name, r))
		}
	}
	if c.Lifeline.PressureMinMPa <= 0 || c.Lifeline.PressureMaxMPa <= c.Lifeline.PressureMinMPa {
		errs = append(errs, errors.New("warnings.lifeline: want 0 < pressure_min_mpa < pressure_max_mpa"))
	}
	if c.Lifeline.DropWindow <= 0 || c.Traffic.CollisionWindow <= 0 || c.Traffic.CollisionCellDeg <= 0 {
		errs = append(errs, errors.New("warnings: lifeline.drop_window, traffic.collision_window and traffic.collision_cell_deg must be positive"))
	}
	for _, w := range c.Webhooks {
		u, err := url.Parse(w.URL)
		if w.Unit == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("warnings.webhooks: %+v: want a unit and an http(s) URL / 须填写责任单位和 http(s) 地址", w))
		}
	}
	if c.WebhookRetries < 0 || c.WebhookBackoff <= 0 || c.WebhookTimeout <= 0 {
		errs = append(errs, errors.New("warnings: webhook_retries ≥ 0, webhook_backoff and webhook_timeout > 0"))
	}
	for _, t := range c.Topics {
		if t.Topic == "" || t.Schema == "" {
			errs = append(errs, fmt.Errorf("warnings.topics: %+v: want topic and schema", t))
		}
	}
	return errors.Join(errs...)
}
