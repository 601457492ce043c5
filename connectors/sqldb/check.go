package sqldb

import (
	"context"

	"citybrain/connectors"
)

var _ connectors.Checker = (*Source)(nil)

// Check connects and runs the read query for zero rows: the login, the
// table or query, and the watermark and key columns are all verified, and
// the mapping is bound to the result's columns.
func (s *Source) Check(ctx context.Context) error {
	db, err := s.open()
	if err != nil {
		return err
	}
	q, _ := s.selectSQL(false)
	rows, err := db.QueryContext(ctx, "SELECT * FROM ("+q+") AS check_q WHERE 1 = 0")
	if err != nil {
		return s.classify("check", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return s.classify("check", err)
	}
	if _, _, err := s.positions(cols); err != nil {
		return err
	}
	_, err = s.bind(cols)
	return err
}
