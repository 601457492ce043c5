package response

import (
	"errors"

	"citybrain/pipelines/response/channels"
	"fmt"
	"time"
)

// Config is the `response` section of citybrain.yaml (docs/config.md).
type Config struct {
	// Enabled runs the response service beside the warning engine.
	Enabled bool `yaml:"enabled"`
	// Instance, with warnings.partitioned, names the one instance (serve
	// --instance) that runs the service; the others do not.
	Instance string `yaml:"instance"`
	// Dir holds the service's state (relative to data_dir).
	Dir string `yaml:"dir"`
	// GroupBy is what makes warnings one response while it is open:
	// "street" (the kind and the street: a surge's cells and venue, a
	// storm's sensors) or "subject" (one per subject).
	GroupBy string `yaml:"group_by"`
	// AckAfter: a task not acknowledged this long after its person was
	// notified goes to the deputy, and after as long again to the superior.
	AckAfter time.Duration `yaml:"ack_after"`
	// MaxAge: a warning transition whose data time is older than this
	// (before the newest data time the platform has seen, or the clock if
	// later) is history — the warning engine replaying its topics — and
	// pages nobody.
	MaxAge time.Duration `yaml:"max_age"`
	// CloseAfterClear closes a response this long after its warnings all
	// cleared (0: only people close it).
	CloseAfterClear time.Duration `yaml:"close_after_clear"`
	// KeepClosed is how long a closed response stays in the app (its
	// timeline stays in marts.responses).
	KeepClosed time.Duration `yaml:"keep_closed"`
	// Incidents: clusters of emergency calls (raw.incidents) that activate
	// the plan levels naming their category.
	Incidents IncidentConfig `yaml:"incidents"`
	// Tick is how often the escalation timers are checked.
	Tick time.Duration `yaml:"tick"`
	// CommitEvery is how often the timeline is committed to marts.responses.
	CommitEvery time.Duration `yaml:"commit_every"`
	// AppURL is the responder app's address in notifications (default:
	// serve's HTTP address + /respond/).
	AppURL string `yaml:"app_url"`
	// Retry is how a notification is retried on a channel.
	Retry RetryConfig `yaml:"retry"`
	// Channels are the notification channels besides the in-app one
	// (e-mail, SMS gateway, WeCom and DingTalk robots); a channel without
	// its address is off, and tasks for it are recorded as failed.
	Channels channels.Config `yaml:"channels"`
}

// IncidentConfig is when emergency calls activate a plan.
type IncidentConfig struct {
	// MinCount calls of one category in one street within Window activate
	// (0: calls never do).
	MinCount int `yaml:"min_count"`
	// Window is the span the calls are counted over.
	Window time.Duration `yaml:"window"`
}

// RetryConfig bounds the attempts of one delivery.
type RetryConfig struct {
	// MaxAttempts per delivery (1: no retry).
	MaxAttempts int `yaml:"max_attempts"`
	// Base is the first backoff; each next one doubles, up to Cap.
	Base time.Duration `yaml:"base"`
	// Cap is the longest backoff.
	Cap time.Duration `yaml:"cap"`
}

// DefaultConfig is the service's defaults.
func DefaultConfig() Config {
	return Config{Enabled: true, Dir: "response", GroupBy: "street", AckAfter: 5 * time.Minute, MaxAge: time.Hour, CloseAfterClear: 30 * time.Minute, KeepClosed: 24 * time.Hour,
		Incidents: IncidentConfig{MinCount: 3, Window: 30 * time.Minute}, Tick: 5 * time.Second, CommitEvery: 2 * time.Second,
		Retry: RetryConfig{MaxAttempts: 5, Base: time.Second, Cap: time.Minute}, Channels: channels.DefaultConfig()}
}

// Validate checks the section.
func (c Config) Validate() error {
	var errs []error
	if c.AckAfter < time.Second {
		errs = append(errs, fmt.Errorf("response.ack_after = %s: 至少 1s / at least 1s", c.AckAfter))
	}
	if c.GroupBy != "street" && c.GroupBy != "subject" {
		errs = append(errs, fmt.Errorf("response.group_by = %q: street 或 subject / street or subject", c.GroupBy))
	}
	if c.Incidents.MinCount > 0 && c.Incidents.Window <= 0 {
		errs = append(errs, fmt.Errorf("response.incidents.window must be positive / 须为正数"))
	}
	if c.Tick <= 0 || c.CommitEvery <= 0 {
		errs = append(errs, fmt.Errorf("response.tick and response.commit_every must be positive / 须为正数"))
	}
	if c.Retry.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("response.retry.max_attempts = %d: 至少 1 / at least 1", c.Retry.MaxAttempts))
	}
	errs = append(errs, c.Channels.Validate())
	return errors.Join(errs...)
}
