package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/segmentio/kafka-go"

	"citybrain/internal/broker"
	"citybrain/internal/testenv"
)

type signalMsg struct {
	Cell    string `json:"cell"`
	TS      string `json:"ts"`
	People  int64  `json:"people"`
	Inflow  int64  `json:"inflow"`
	Outflow int64  `json:"outflow"`
	Seq     int64  `json:"seq"`
}

func signalMsgs(n int) ([]signalMsg, int64) {
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	out := make([]signalMsg, n)
	var sum int64
	for i := range out {
		out[i] = signalMsg{Cell: fmt.Sprintf("XC-%04d", i%3000), TS: start.Add(time.Duration(i/3000) * 5 * time.Minute).Format(time.RFC3339),
			People: int64(i*7919) % 5000, Inflow: int64(i % 100), Outflow: int64(i % 77), Seq: int64(i/10) + 1}
		sum += out[i].People
	}
	return out, sum
}

func appendConfig(t *testing.T, e *env, cfg string) {
	t.Helper()
	e.replace("lake_writer: {flush_rows: 100000, flush_interval: 2s, idle_flush: 300ms}\n", "")
	b, _ := os.ReadFile(e.config)
	if err := os.WriteFile(e.config, append(b, cfg...), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestKillNineUpstreamKafka: the upstream-Kafka transport (a department's
// own cluster, here a second broker) killed at random moments resumes from
// the upstream offsets the lake committed.
func TestKillNineUpstreamKafka(t *testing.T) {
	if testing.Short() {
		t.Skip("kill test: skipped with -short")
	}
	const n = 60_000
	up, err := broker.StartEmbedded(t.TempDir(), 0, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	ctx := context.Background()
	c := broker.NewClient([]string{up.Addr()}, broker.Config{Partitions: 3, ReplicationFactor: 1})
	if err := c.EnsureTopics(ctx, "dept.signal"); err != nil {
		t.Fatal(err)
	}
	msgs, sum := signalMsgs(n)
	w := &kafka.Writer{Addr: kafka.TCP(up.Addr()), Topic: "dept.signal", Balancer: &kafka.Hash{}, BatchSize: 5000, RequiredAcks: kafka.RequireAll}
	batch := make([]kafka.Message, 0, 5000)
	for i, m := range msgs {
		b, _ := json.Marshal(m)
		batch = append(batch, kafka.Message{Key: []byte(m.Cell), Value: b})
		if len(batch) == cap(batch) || i == n-1 {
			if err := w.WriteMessages(ctx, batch...); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	w.Close()
	e := newEnv(t, "")
	appendConfig(t, e, fmt.Sprintf(`lake_writer: {flush_rows: 2500, flush_interval: 500ms, idle_flush: 200ms}
sources:
  - name: signal_upstream
    schema: mobile_signal
    transport: kafka
    poll_interval: 200ms
    kafka: {brokers: [%q], topic: dept.signal, batch_rows: 1000}
%s`, up.Addr(), signalMapping)+disableOthers("signal_upstream"))
	e.run("connectors", "check", "--source", "signal_upstream")
	killLoop(t, e, n, sum, 10)
}

// TestKillNineMQTT: water telemetry over MQTT (QoS 1, persistent session on
// a real Mosquitto) with citybrain killed at random moments: messages are
// acknowledged only once durable in Kafka, redeliveries are dropped by the
// per-sensor sequence.
func TestKillNineMQTT(t *testing.T) {
	if testing.Short() {
		t.Skip("kill test: skipped with -short")
	}
	const n = 30_000
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	mq, err := testenv.StartMosquitto(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer mq.Stop()
	e := newEnv(t, "")
	appendConfig(t, e, fmt.Sprintf(`lake_writer: {flush_rows: 2500, flush_interval: 500ms, idle_flush: 200ms}
sources:
  - name: signal_mqtt
    schema: mobile_signal
    transport: mqtt
    poll_interval: 200ms
    mqtt: {broker: %q, topics: ["sensors/+"], client_id: citybrain-kill-test, pos_field: seq, batch_size: 500}
%s`, mq.Addr(), signalMapping)+disableOthers("signal_mqtt"))
	// The persistent session must exist before the telemetry is published.
	e.run("connectors", "check", "--source", "signal_mqtt")
	msgs, sum := signalMsgs(n)
	pub := paho.NewClient(paho.NewClientOptions().AddBroker(mq.Addr()).SetClientID("kill-test-publisher").SetCleanSession(true))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher: %v", tok.Error())
	}
	toks := make([]paho.Token, 0, n)
	for i, m := range msgs {
		b, _ := json.Marshal(m)
		toks = append(toks, pub.Publish("sensors/s-"+strconv.Itoa(i%10), 1, false, b))
	}
	for _, tok := range toks {
		if !tok.WaitTimeout(60*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	pub.Disconnect(100)
	killLoop(t, e, n, sum, 10)
}
