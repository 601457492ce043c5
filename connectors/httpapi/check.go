package httpapi

import (
	"context"

	"citybrain/connectors"
)

var _ connectors.Checker = (*Source)(nil)

// Check fetches the first page once (auth, URL, response shape) without
// emitting anything.
func (s *Source) Check(ctx context.Context) error {
	st := s.initial()
	_, _, err := s.fetch(ctx, &st)
	return err
}
