package testenv

import (
	"context"
	"errors"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

func mqttClient(t *testing.T, addr, id string, clean bool, user, pass string, onMsg paho.MessageHandler) (paho.Client, error) {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(addr).SetClientID(id).SetCleanSession(clean).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second).SetDefaultPublishHandler(onMsg)
	if user != "" {
		o.SetUsername(user).SetPassword(pass)
	}
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, errors.New("connect timed out")
	}
	return c, tok.Error()
}

func wait(t *testing.T, tok paho.Token) {
	t.Helper()
	if !tok.WaitTimeout(10 * time.Second) {
		t.Fatal("mqtt operation timed out")
	}
	if err := tok.Error(); err != nil {
		t.Fatal(err)
	}
}

func TestMosquitto(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Mosquitto broker; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	mq, err := StartMosquitto(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := mq.Stop(); err != nil {
			t.Error(err)
		}
	})
	t.Logf("mosquitto up in %v at %s", time.Since(start).Round(time.Millisecond), mq.Addr())

	got := make(chan paho.Message, 10)
	sub, err := mqttClient(t, mq.Addr(), "testenv-sub", false, "", "", func(_ paho.Client, m paho.Message) { got <- m })
	if err != nil {
		t.Fatal(err)
	}
	wait(t, sub.Subscribe("water/pressure/+", 1, nil))
	pub, err := mqttClient(t, mq.Addr(), "testenv-pub", true, "", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Disconnect(100)
	wait(t, pub.Publish("water/pressure/P-0012", 1, false, `{"seq":1}`))
	select {
	case m := <-got:
		if m.Topic() != "water/pressure/P-0012" || string(m.Payload()) != `{"seq":1}` {
			t.Fatalf("got %s %s", m.Topic(), m.Payload())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("message not delivered")
	}

	// A persistent session keeps its QoS 1 queue across a broker restart.
	sub.Disconnect(100)
	wait(t, pub.Publish("water/pressure/P-0012", 1, false, `{"seq":2}`))
	pub.Disconnect(100)
	if err := mq.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	sub, err = mqttClient(t, mq.Addr(), "testenv-sub", false, "", "", func(_ paho.Client, m paho.Message) { got <- m })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Disconnect(100)
	select {
	case m := <-got:
		if string(m.Payload()) != `{"seq":2}` {
			t.Fatalf("after restart got %s", m.Payload())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("queued message lost across Restart")
	}
}

func TestMosquittoUsers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Mosquitto broker; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	mq, err := StartMosquittoWith(ctx, t.TempDir(), MosquittoOptions{Users: map[string]string{"cb": "secret"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mq.Stop() })
	c, err := mqttClient(t, mq.Addr(), "ok", true, "cb", "secret", nil)
	if err != nil {
		t.Fatalf("right password refused: %v", err)
	}
	c.Disconnect(100)
	for _, pw := range []string{"wrong", ""} {
		_, err = mqttClient(t, mq.Addr(), "bad", true, "cb", pw, nil)
		if !errors.Is(err, packets.ErrorRefusedNotAuthorised) && !errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword) {
			t.Fatalf("password %q: got %v, want a CONNACK refusal", pw, err)
		}
	}
}
