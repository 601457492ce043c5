package mqtt_test

import (
	"context"
	"testing"
	"time"

	"citybrain/connectors"
	"citybrain/connectors/connectortest"
	"citybrain/internal/testenv"
)

// TestConformance runs the transport suite against a real Mosquitto.
//
// Each New is a fresh feed: a new client id (a new persistent session) over
// a new topic prefix; the session is established (Connect) before the n
// records are published, so the broker queues all of them for it. The
// suite's second Read of one source ("resumes from any cursor") works as in
// production: what the first Read emitted successfully was acknowledged and
// is gone from the broker, and the batch whose emit failed was not
// acknowledged — the source keeps it and reads it again, dropping by Pos
// what the given positions already cover. Append publishes more records to
// the same topics.
func TestConformance(t *testing.T) {
	mq := startBroker(t)
	s, m := water(t)
	pub := publisher(t, mq.Addr())
	var prefix string
	connectortest.Run(t, connectortest.Harness{
		New: func(t *testing.T, n int) connectors.Source {
			id := uniq("ct")
			prefix = "ct/" + id
			src := newSource(t, config(mq.Addr(), id, prefix), m)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := src.Connect(ctx); err != nil {
				t.Fatal(err)
			}
			publishRange(t, pub, prefix, 0, n)
			return src
		},
		Append: func(t *testing.T, n, k int) { publishRange(t, pub, prefix, n, n+k) },
		Key:    key(s),
		Broken: func(t *testing.T) connectors.Source {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			auth, err := testenv.StartMosquittoWith(ctx, t.TempDir(), testenv.MosquittoOptions{Users: map[string]string{"citybrain": "right"}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { auth.Stop() })
			t.Setenv("CB_TEST_MQTT_PASSWORD", "wrong")
			cfg := config(auth.Addr(), uniq("broken"), "x")
			cfg.Username, cfg.PasswordEnv = "citybrain", "CB_TEST_MQTT_PASSWORD"
			return newSource(t, cfg, m)
		},
	})
}
