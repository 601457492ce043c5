package mqtt

import (
	"context"

	"citybrain/connectors"
)

var _ connectors.Checker = (*Source)(nil)

// Check connects to the broker with the configured session and subscribes:
// the broker answers, the credentials and client id are accepted and the
// topics may be subscribed. Messages that arrive meanwhile stay queued
// unacknowledged for the next Read.
func (s *Source) Check(ctx context.Context) error {
	return s.Connect(ctx)
}
