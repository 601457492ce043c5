-- 大客流预警（网格）/ Crowd warning per grid cell.
-- As for venues (mobile_signal.crowd_venue.sql) but without a capacity: density (people/m²)
-- and the ratio to the usual count for that time of week, now and 15/30/60 min ahead.
-- The responsible unit of a cell is its street office (street:<street_code>).
WITH c AS (
  SELECT s.*, g.area_m2, g.street_code
  -- cell_next: the new state rows of the cells staged in this interval (mobile_signal.state.sql)
  FROM cell_next s
  LEFT JOIN grid_cells g ON g.grid_cell_id = s.grid_cell_id CROSS JOIN params p
  -- Skip cells under a third of the lowest level's count (they cannot reach it within the horizons
  -- at any growth seen in practice) unless they have a warning to lower or clear: at 262k cells
  -- this keeps the rule to the few that matter.
  WHERE 3 * s.people >= least(p.base_min_people, coalesce(g.area_m2, 1e12) * p.cd_b) * (1 - p.hyst)
     OR s.grid_cell_id IN (SELECT subject_id FROM active_warnings WHERE subject_type = 'grid_cell')
),
h AS (
  SELECT c.*, hz.horizon_min,
    CASE WHEN hz.horizon_min = 0 THEN c.people::DOUBLE
         ELSE crowd_forecast(coalesce(CASE WHEN b.n >= p.min_n THEN b.mean END, c.people::DOUBLE - coalesce(c.a0, 0)),
                             c.a0, anomaly_trend(c.a0, c.a1, c.a2, c.a3), hz.k, p.rho, p.phi) END AS people_h,
    CASE WHEN hz.horizon_min = 0 THEN c.base WHEN b.n >= p.min_n THEN b.mean END AS base_h
  FROM c CROSS JOIN horizons hz CROSS JOIN params p
  LEFT JOIN cell_baseline b ON b.grid_cell_id = c.grid_cell_id
    AND b.slot = slot_of(c.window_start + to_minutes(CAST(hz.horizon_min AS BIGINT)), p.slot_min, p.tz_offset_min)
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
  SELECT grid_cell_id, arg_min(horizon_min, horizon_min - 10000 * level_h) AS horizon_min, max(hold_h) AS hold_level
  FROM l GROUP BY grid_cell_id
  -- only cells at a level, or with a warning to lower or clear (active_warnings is kept by the engine)
  HAVING max(hold_h) > 0 OR grid_cell_id IN (SELECT subject_id FROM active_warnings WHERE subject_type = 'grid_cell')
)
SELECT 'crowd' AS kind, l.metric, 'grid_cell' AS subject_type, l.grid_cell_id AS subject_id,
  '网格 ' || l.grid_cell_id AS subject_name_zh, 'Grid cell ' || l.grid_cell_id AS subject_name_en,
  l.street_code, CASE WHEN l.street_code IS NOT NULL THEN 'street:' || l.street_code END AS responsible_unit,
  l.window_start AS event_time, l.level_h AS level, greatest(best.hold_level, l.level_h) AS hold_level,
  l.horizon_min > 0 AS predicted, l.horizon_min,
  CASE l.metric WHEN 'density' THEN cur.density ELSE cur.base_ratio END AS observed_value,
  CASE WHEN l.horizon_min > 0 THEN CASE l.metric WHEN 'density' THEN l.density ELSE l.base_ratio END END AS forecast_value,
  CASE l.metric WHEN 'density' THEN threshold_of(l.level_h, p.cd_b, p.cd_y, p.cd_o, p.cd_r)
                ELSE threshold_of(l.level_h, p.cb_b, p.cb_y, p.cb_o, p.cb_r) END AS threshold,
  CASE l.metric WHEN 'density' THEN '人/m²' ELSE 'ratio' END AS unit,
  l.people AS people_count, round(l.people_h) AS forecast_people, l.base AS baseline_value
FROM l JOIN best ON best.grid_cell_id = l.grid_cell_id AND best.horizon_min = l.horizon_min
JOIN l cur ON cur.grid_cell_id = l.grid_cell_id AND cur.horizon_min = 0
CROSS JOIN params p
