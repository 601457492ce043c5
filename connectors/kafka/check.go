package kafkasrc

import (
	"context"
	"fmt"

	"citybrain/connectors"
)

var _ connectors.Checker = (*Source)(nil)

// Check logs in and looks the topic up: the brokers answer, the
// credentials are accepted and the topic exists.
func (s *Source) Check(ctx context.Context) error {
	s.mu.Lock()
	err := s.sasl()
	s.mu.Unlock()
	if err != nil {
		return err
	}
	parts, err := s.partitions(ctx)
	if err != nil {
		return err
	}
	if len(parts) == 0 {
		return fmt.Errorf("%w: topic %s has no partitions", connectors.ErrPermanent, s.cfg.Topic)
	}
	return nil
}
