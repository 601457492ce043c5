-- 大客流预警（网格），批量 / Crowd warning per grid cell, catch-up in bulk: ../mobile_signal.crowd_grid_cell.sql
-- over many intervals at once (one row per cell and interval; bulk_cell_rows from mobile_signal.state.sql).
-- Differences, all about evaluating many intervals at once:
--   * the usual count of a horizon's slot is the one as of the row's interval (the version of
--     bulk_cell_base valid at its ord: stored baseline plus the folds before it), not the one after
--     the last interval;
--   * grouping and joins are per cell and interval (ord);
--   * the sequential rule returns a row when the cell passes the filter and is at a level, or has a
--     warning open then. Whether it has one then is the lifecycle's, applied after the rule: the row
--     comes with _only_if_active (true: not at a level or filtered out) and the engine drops it
--     unless a warning of the cell is open when the row's turn comes. Cells that never pass and hold
--     no warning now cannot have one in these intervals and are left out.
WITH r AS (
  SELECT s.*, g.area_m2, g.street_code,
    3 * s.people >= least(p.base_min_people, coalesce(g.area_m2, 1e12) * p.cd_b) * (1 - p.hyst) AS gate
  FROM bulk_cell_rows s LEFT JOIN grid_cells g ON g.grid_cell_id = s.grid_cell_id CROSS JOIN params p
),
open_now AS (SELECT subject_id FROM active_warnings WHERE subject_type = 'grid_cell'),
c AS (
  SELECT r.* FROM r
  WHERE r.grid_cell_id IN (SELECT grid_cell_id FROM r WHERE gate) OR r.grid_cell_id IN (SELECT subject_id FROM open_now)
),
ch AS (
  SELECT c.*, hz.horizon_min, hz.k,
    slot_of(c.window_start + to_minutes(CAST(hz.horizon_min AS BIGINT)), p.slot_min, p.tz_offset_min) AS slot_h
  FROM c CROSS JOIN horizons hz CROSS JOIN params p
),
hb AS (
  SELECT ch.*, bv.n AS bn, bv.mean AS bmean
  FROM ch
  LEFT JOIN bulk_cell_base bv ON bv.grid_cell_id = ch.grid_cell_id AND bv.slot = ch.slot_h AND ch.ord >= bv.from_ord AND ch.ord < bv.to_ord
),
h AS (
  SELECT hb.*,
    CASE WHEN hb.horizon_min = 0 THEN hb.people::DOUBLE
         ELSE crowd_forecast(coalesce(CASE WHEN hb.bn >= p.min_n THEN hb.bmean END, hb.people::DOUBLE - coalesce(hb.a0, 0)),
                             hb.a0, anomaly_trend(hb.a0, hb.a1, hb.a2, hb.a3), hb.k, p.rho, p.phi) END AS people_h,
    CASE WHEN hb.horizon_min = 0 THEN hb.base WHEN hb.bn >= p.min_n THEN hb.bmean END AS base_h
  FROM hb CROSS JOIN params p
),
m AS (
  SELECT h.*,
    people_h / nullif(area_m2, 0) AS density,
    CASE WHEN people_h >= p.base_min_people AND base_h > 0 THEN people_h / base_h END AS base_ratio,
    level_of(people_h / nullif(area_m2, 0), p.cd_b, p.cd_y, p.cd_o, p.cd_r) AS l_density,
    level_of(CASE WHEN people_h >= p.base_min_people AND base_h > 0 THEN people_h / base_h END, p.cb_b, p.cb_y, p.cb_o, p.cb_r) AS l_base,
    greatest(hold_of(people_h / nullif(area_m2, 0), p.cd_b, p.cd_y, p.cd_o, p.cd_r, p.hyst),
             hold_of(CASE WHEN people_h >= p.base_min_people * (1 - p.hyst) AND base_h > 0 THEN people_h / base_h END, p.cb_b, p.cb_y, p.cb_o, p.cb_r, p.hyst)) AS hold_h
  FROM h CROSS JOIN params p
),
l AS MATERIALIZED (
  SELECT m.*, greatest(l_density, l_base) AS level_h,
    CASE WHEN l_base > l_density THEN 'baseline_ratio' ELSE 'density' END AS metric
  FROM m
),
best AS (
  SELECT grid_cell_id, ord, arg_min(horizon_min, horizon_min - 10000 * level_h) AS horizon_min, max(hold_h) AS hold_level,
    bool_or(gate) AND max(hold_h) > 0 AS sure
  FROM l GROUP BY grid_cell_id, ord
),
e AS (
  -- from the first interval the sequential rule returns whatever the lifecycle, or all for a cell with a warning now
  SELECT best.*, bool_or(sure) OVER (PARTITION BY grid_cell_id ORDER BY ord ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
      OR grid_cell_id IN (SELECT subject_id FROM open_now) AS may
  FROM best
)
SELECT 'crowd' AS kind, l.metric, 'grid_cell' AS subject_type, l.grid_cell_id AS subject_id,
  '网格 ' || l.grid_cell_id AS subject_name_zh, 'Grid cell ' || l.grid_cell_id AS subject_name_en,
  l.street_code, CASE WHEN l.street_code IS NOT NULL THEN 'street:' || l.street_code END AS responsible_unit,
  l.window_start AS event_time, l.level_h AS level, greatest(e.hold_level, l.level_h) AS hold_level,
  l.horizon_min > 0 AS predicted, l.horizon_min,
  CASE l.metric WHEN 'density' THEN cur.density ELSE cur.base_ratio END AS observed_value,
  CASE WHEN l.horizon_min > 0 THEN CASE l.metric WHEN 'density' THEN l.density ELSE l.base_ratio END END AS forecast_value,
  CASE l.metric WHEN 'density' THEN threshold_of(l.level_h, p.cd_b, p.cd_y, p.cd_o, p.cd_r)
                ELSE threshold_of(l.level_h, p.cb_b, p.cb_y, p.cb_o, p.cb_r) END AS threshold,
  CASE l.metric WHEN 'density' THEN '人/m²' ELSE 'ratio' END AS unit,
  l.people AS people_count, round(l.people_h) AS forecast_people, l.base AS baseline_value,
  NOT e.sure AS _only_if_active
FROM l JOIN e ON e.grid_cell_id = l.grid_cell_id AND e.ord = l.ord AND e.horizon_min = l.horizon_min
JOIN l cur ON cur.grid_cell_id = l.grid_cell_id AND cur.ord = l.ord AND cur.horizon_min = 0
CROSS JOIN params p
WHERE e.may
