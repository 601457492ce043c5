package warnings

import (
	"context"
	"database/sql/driver"
	"fmt"
	"io"
	"log/slog"
	"math"
	"time"

	"citybrain/schemas"
)

// Point is one observation of a series (people counted in the interval starting At).
type Point struct {
	Subject string
	At      time.Time
	Value   float64
}

// Score is a forecaster's error at one horizon against the historical-average
// baseline (the mean of every earlier observation of the same time-of-week slot).
type Score struct {
	HorizonMin   int     `json:"horizon_min"`
	N            int     `json:"n"`
	MAE          float64 `json:"mae"`
	RMSE         float64 `json:"rmse"`
	BaselineMAE  float64 `json:"baseline_mae"`
	BaselineRMSE float64 `json:"baseline_rmse"`
	// Ratio is RMSE / BaselineRMSE (target ≤ 0.7 at 30 min).
	Ratio float64 `json:"rmse_ratio"`
}

// Backtest replays series through the engine's forecast (the crowd_forecast
// and anomaly_trend macros of rules/schema.sql, with the same baselines the
// streaming state keeps: running means per time-of-week slot of what came
// before the forecast's origin) and scores forecasts made at origins from
// testFrom on. Nothing after an origin is used for its forecast.
func Backtest(ctx context.Context, cfg Config, points []Point, horizons []int, testFrom time.Time) ([]Score, error) {
	reg, err := schemas.Builtin()
	if err != nil {
		return nil, err
	}
	e, err := Open(ctx, cfg, "", reg, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	if err := e.exec(ctx, "backtest", "CREATE TEMP TABLE series (subject VARCHAR, ts TIMESTAMP, value DOUBLE)"); err != nil {
		return nil, err
	}
	if err := e.appendRows(ctx, "main", "series", len(points), func(i int) []driver.Value {
		return []driver.Value{points[i].Subject, points[i].At.UTC(), points[i].Value}
	}); err != nil {
		return nil, err
	}
	ivl := cfg.Crowd.Interval.Minutes()
	stmts := []string{
		`CREATE TEMP TABLE s AS SELECT subject, ts, value, slot_of(ts, p.slot_min, p.tz_offset_min) AS slot FROM series CROSS JOIN params p`,
		// running mean per slot, including the row: as of a time t, the
		// baseline is the last row of the slot strictly before t.
		`CREATE TEMP TABLE cum AS SELECT subject, slot, ts,
		   avg(value) OVER (PARTITION BY subject, slot ORDER BY ts ROWS UNBOUNDED PRECEDING) AS mean,
		   count(*) OVER (PARTITION BY subject, slot ORDER BY ts ROWS UNBOUNDED PRECEDING) AS n FROM s`,
		`CREATE TEMP TABLE o AS
		 SELECT s.subject, s.ts, s.value, c.mean AS base, c.n AS n,
		   CASE WHEN c.n >= p.min_n THEN s.value - c.mean ELSE 0 END AS a0
		 FROM s CROSS JOIN params p ASOF LEFT JOIN cum c ON c.subject = s.subject AND c.slot = s.slot AND c.ts < s.ts`,
		`CREATE TEMP TABLE ol AS SELECT *, lag(a0, 1) OVER w AS a1, lag(a0, 2) OVER w AS a2, lag(a0, 3) OVER w AS a3 FROM o
		 WINDOW w AS (PARTITION BY subject ORDER BY ts)`,
	}
	if err := e.exec(ctx, "backtest", stmts...); err != nil {
		return nil, err
	}
	var out []Score
	for _, h := range horizons {
		q := fmt.Sprintf(`
WITH f AS (
  SELECT ol.subject, ol.ts, ol.value, ol.base, ol.a0, ol.a1, ol.a2, ol.a3,
    ol.ts + to_minutes(%[1]d) AS target_at, slot_of(ol.ts + to_minutes(%[1]d), p.slot_min, p.tz_offset_min) AS target_slot
  FROM ol CROSS JOIN params p WHERE ol.ts >= ?),
b AS (
  SELECT f.*, c.mean AS target_base, c.n AS target_n FROM f ASOF LEFT JOIN cum c
  ON c.subject = f.subject AND c.slot = f.target_slot AND c.ts < f.ts),
r AS (
  SELECT b.*, act.value AS actual,
    crowd_forecast(coalesce(CASE WHEN target_n >= p.min_n THEN target_base END, b.value - b.a0), b.a0, anomaly_trend(b.a0, b.a1, b.a2, b.a3), %[2]v, p.rho, p.phi) AS fc
  FROM b JOIN series act ON act.subject = b.subject AND act.ts = b.target_at CROSS JOIN params p
  WHERE b.target_n >= p.min_n)
SELECT count(*), avg(abs(fc - actual)), sqrt(avg((fc - actual) ^ 2)), avg(abs(target_base - actual)), sqrt(avg((target_base - actual) ^ 2)) FROM r`,
			h, float64(h)/ivl)
		rows, err := e.Query(ctx, q, testFrom.UTC())
		if err != nil {
			return nil, fmt.Errorf("backtest %d min: %w", h, err)
		}
		r := rows[0]
		sc := Score{HorizonMin: h, N: int(num(r[0])), MAE: num(r[1]), RMSE: num(r[2]), BaselineMAE: num(r[3]), BaselineRMSE: num(r[4])}
		if sc.BaselineRMSE > 0 {
			sc.Ratio = sc.RMSE / sc.BaselineRMSE
		} else {
			sc.Ratio = math.NaN()
		}
		out = append(out, sc)
	}
	return out, nil
}
