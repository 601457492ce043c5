package warnings

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Notifier delivers transitions to the webhooks of their responsible unit:
// a POST of the transition's JSON, retried with doubling backoff on a
// network error or a non-2xx answer, and written with the reason to the
// dead-letter file when every attempt failed. Delivery is at least once:
// the queue lives in the engine's state and an entry leaves it only when
// delivered or dead-lettered.
type Notifier struct {
	eng      *Engine
	hooks    []Webhook
	retries  int
	backoff  time.Duration
	client   *http.Client
	deadFile string
	log      *slog.Logger
	kick     chan struct{}
	mu       sync.Mutex

	// Delivered and Dead count deliveries (for tests and status).
	Delivered, Dead int
}

// DeadLetter is one line of the dead-letter file.
type DeadLetter struct {
	Unit       string     `json:"unit"`
	URL        string     `json:"url"`
	Attempts   int        `json:"attempts"`
	Reason     string     `json:"reason"`
	FailedAt   time.Time  `json:"failed_at"`
	Transition Transition `json:"transition"`
}

// NewNotifier returns the notifier of eng's queue; dead letters go to deadFile (JSON lines).
func NewNotifier(eng *Engine, cfg Config, deadFile string, log *slog.Logger) *Notifier {
	return &Notifier{eng: eng, hooks: cfg.Webhooks, retries: cfg.WebhookRetries, backoff: cfg.WebhookBackoff,
		client: &http.Client{Timeout: cfg.WebhookTimeout}, deadFile: deadFile, log: log, kick: make(chan struct{}, 1)}
}

// Kick asks Run to look at the queue now.
func (n *Notifier) Kick() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// Run delivers queued notifications until ctx is done.
func (n *Notifier) Run(ctx context.Context) error {
	if len(n.hooks) == 0 {
		<-ctx.Done()
		return nil
	}
	for {
		if err := n.Drain(ctx); err != nil && ctx.Err() == nil {
			n.log.Error("预警通知队列读取失败 warning notifications: queue", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-n.kick:
		case <-time.After(5 * time.Second):
		}
	}
}

// Drain delivers everything queued now.
func (n *Notifier) Drain(ctx context.Context) error {
	for ctx.Err() == nil {
		ts, err := n.eng.queue(ctx, "notify_queue", 100)
		if err != nil || len(ts) == 0 {
			return err
		}
		for _, t := range ts {
			for _, h := range n.hooks {
				if h.Unit == "*" || h.Unit == t.ResponsibleUnit {
					n.deliver(ctx, h, t)
				}
			}
			if ctx.Err() != nil {
				return nil
			}
			if err := n.eng.dequeueOne(ctx, "notify_queue", t.Seq); err != nil {
				return err
			}
		}
	}
	return nil
}

func (n *Notifier) deliver(ctx context.Context, h Webhook, t Transition) {
	body, _ := json.Marshal(t)
	wait := n.backoff
	var reason string
	attempts := 0
	for attempt := 0; attempt <= n.retries; attempt++ {
		attempts++
		err := n.post(ctx, h.URL, body)
		if err == nil {
			n.mu.Lock()
			n.Delivered++
			n.mu.Unlock()
			return
		}
		reason = err.Error()
		if ctx.Err() != nil {
			return
		}
		if attempt == n.retries {
			break
		}
		n.log.Warn("预警通知失败，稍后重试 webhook failed; retrying", "unit", h.Unit, "url", h.URL, "warning", t.WarningID, "attempt", attempts, "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, time.Minute)
	}
	n.mu.Lock()
	n.Dead++
	n.mu.Unlock()
	n.log.Error("预警通知多次失败，已写入死信 webhook failed after retries; dead-lettered", "unit", h.Unit, "url", h.URL, "warning", t.WarningID, "file", n.deadFile, "err", reason)
	if err := n.deadLetter(DeadLetter{Unit: h.Unit, URL: h.URL, Attempts: attempts, Reason: reason, FailedAt: time.Now().UTC(), Transition: t}); err != nil {
		n.log.Error("dead letter not written", "file", n.deadFile, "err", err)
	}
}

func (n *Notifier) post(ctx context.Context, url string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	resp, err := n.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(msg))
	}
	return nil
}

func (n *Notifier) deadLetter(d DeadLetter) error {
	if err := os.MkdirAll(filepath.Dir(n.deadFile), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(n.deadFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	line, _ := json.Marshal(d)
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
