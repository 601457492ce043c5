package sim

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// Broker is the embedded MQTT broker (mochi-mqtt) the water feed is
// published to when no department broker is configured. It listens on
// loopback only and accepts any client.
type Broker struct {
	srv  *mochi.Server
	addr string
}

// StartBroker starts an MQTT broker on addr (host:port).
func StartBroker(addr string, log *slog.Logger) (*Broker, error) {
	caps := mochi.NewDefaultServerCapabilities()
	caps.MaximumInflight = 65535
	caps.MaximumClientWritesPending = 64 * 1024
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv := mochi.New(&mochi.Options{Capabilities: caps, Logger: log.With("component", "mqtt-broker"), InlineClient: false})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		return nil, err
	}
	if err := srv.AddListener(listeners.NewTCP(listeners.Config{Type: "tcp", ID: "sim", Address: addr})); err != nil {
		return nil, fmt.Errorf("MQTT 代理无法监听 %s / MQTT broker cannot listen on %s: %w (set sim.mqtt.addr to a free port)", addr, addr, err)
	}
	if err := srv.Serve(); err != nil {
		return nil, err
	}
	return &Broker{srv: srv, addr: addr}, nil
}

// URL is the broker's tcp:// URL.
func (b *Broker) URL() string { return "tcp://" + b.addr }

// Subscribed reports whether some client subscribes to topic.
func (b *Broker) Subscribed(topic string) bool {
	return len(b.srv.Topics.Subscribers(topic).Subscriptions) > 0
}

// Inflight is the number of QoS>0 messages not yet acknowledged by their
// subscribers: the publisher waits while it is high, as the broker drops
// messages beyond its in-flight quota.
func (b *Broker) Inflight() int64 { return atomic.LoadInt64(&b.srv.Info.Inflight) }

// Close stops the broker.
func (b *Broker) Close() error { return b.srv.Close() }

// publisher publishes water telemetry with QoS 1.
type publisher struct {
	client paho.Client
	prefix string
	broker *Broker // nil for an external broker
}

func newPublisher(ctx context.Context, url, prefix string, b *Broker) (*publisher, error) {
	opts := paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("citybrain-sim-%d", time.Now().UnixNano())).
		SetCleanSession(true).SetAutoReconnect(true).SetConnectRetry(true).SetConnectTimeout(5 * time.Second).SetMaxReconnectInterval(5 * time.Second)
	c := paho.NewClient(opts)
	tok := c.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(30 * time.Second):
		return nil, fmt.Errorf("MQTT 连接超时 / connect to %s timed out", url)
	}
	if err := tok.Error(); err != nil {
		return nil, fmt.Errorf("MQTT 连接失败 / connect to %s: %w", url, err)
	}
	return &publisher{client: c, prefix: prefix, broker: b}, nil
}

// waitSubscriber blocks until the embedded broker has a subscriber for the
// water topics (so history is not published into the void before the
// connector's persistent session exists).
func (p *publisher) waitSubscriber(ctx context.Context, sensor string) error {
	if p.broker == nil {
		return nil
	}
	for !p.broker.Subscribed(p.prefix + "/" + sensor) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}

// publish sends messages with QoS 1, keeping a bounded window of
// unacknowledged publishes and (embedded broker) the broker's in-flight
// count below its quota.
func (p *publisher) publish(ctx context.Context, msgs []WaterMsg) error {
	const window = 256
	var toks []paho.Token
	for _, m := range msgs {
		for p.broker != nil && p.broker.Inflight() > 1000 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
		toks = append(toks, p.client.Publish(p.prefix+"/"+m.SensorID, 1, false, m.JSON()))
		if len(toks) >= window {
			if err := waitAll(ctx, toks); err != nil {
				return err
			}
			toks = toks[:0]
		}
	}
	return waitAll(ctx, toks)
}

func waitAll(ctx context.Context, toks []paho.Token) error {
	for _, t := range toks {
		select {
		case <-t.Done():
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := t.Error(); err != nil {
			return fmt.Errorf("MQTT publish: %w", err)
		}
	}
	return nil
}

func (p *publisher) close() { p.client.Disconnect(250) }
