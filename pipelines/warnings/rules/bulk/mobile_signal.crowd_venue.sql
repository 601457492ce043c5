-- 大客流预警（场所），批量 / Crowd warning per venue (fallback on its cells), catch-up in bulk:
-- ../mobile_signal.crowd_venue.sql over many intervals at once (bulk_venue_rows from
-- mobile_signal.state.sql), with the same differences as mobile_signal.crowd_grid_cell.sql here: usual
-- counts as of the row's interval, grouping per venue and interval, and a row the sequential rule
-- returns only for a venue with an open warning of this rule (its own count arrived within the last
-- hour) carries _only_if_active for the engine to drop unless one is open at the row's turn.
WITH v AS (
  SELECT s.*, vn.name_zh, vn.name_en, vn.capacity_people, vn.area_m2, vn.street_code, vn.responsible_unit,
    NOT EXISTS (SELECT 1 FROM venue_count_state c WHERE c.venue_id = s.venue_id AND c.window_start >= s.window_start - INTERVAL 1 HOUR) AS gate
  FROM bulk_venue_rows s JOIN venues vn ON vn.venue_id = s.venue_id
),
open_now AS (SELECT subject_id FROM active_warnings WHERE rule = 'mobile_signal.crowd_venue' AND subject_type = 'venue'),
vh AS (
  SELECT v.*, hz.horizon_min, hz.k,
    slot_of(v.window_start + to_minutes(CAST(hz.horizon_min AS BIGINT)), p.slot_min, p.tz_offset_min) AS slot_h
  FROM v CROSS JOIN horizons hz CROSS JOIN params p
  WHERE v.venue_id IN (SELECT venue_id FROM v WHERE gate) OR v.venue_id IN (SELECT subject_id FROM open_now)
),
hb AS (
  SELECT vh.*, bv.n AS bn, bv.mean AS bmean
  FROM vh
  LEFT JOIN bulk_venue_base bv ON bv.venue_id = vh.venue_id AND bv.slot = vh.slot_h AND vh.ord >= bv.from_ord AND vh.ord < bv.to_ord
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
    people_h / nullif(capacity_people, 0) AS cap_ratio,
    CASE WHEN people_h >= p.base_min_people AND base_h > 0 THEN people_h / base_h END AS base_ratio,
    level_of(people_h / nullif(area_m2, 0), p.cd_b, p.cd_y, p.cd_o, p.cd_r) AS l_density,
    level_of(people_h / nullif(capacity_people, 0), p.cc_b, p.cc_y, p.cc_o, p.cc_r) AS l_cap,
    level_of(CASE WHEN people_h >= p.base_min_people AND base_h > 0 THEN people_h / base_h END, p.cb_b, p.cb_y, p.cb_o, p.cb_r) AS l_base,
    (people_h - base_h) / nullif(capacity_people, 0) AS excess,
    level_of((people_h - base_h) / nullif(capacity_people, 0), p.cx_b, p.cx_y, p.cx_o, p.cx_r) AS l_excess,
    greatest(hold_of(people_h / nullif(area_m2, 0), p.cd_b, p.cd_y, p.cd_o, p.cd_r, p.hyst),
             hold_of(people_h / nullif(capacity_people, 0), p.cc_b, p.cc_y, p.cc_o, p.cc_r, p.hyst),
             hold_of(CASE WHEN people_h >= p.base_min_people * (1 - p.hyst) AND base_h > 0 THEN people_h / base_h END, p.cb_b, p.cb_y, p.cb_o, p.cb_r, p.hyst),
             hold_of((people_h - base_h) / nullif(capacity_people, 0), p.cx_b, p.cx_y, p.cx_o, p.cx_r, p.hyst)) AS hold_h
  FROM h CROSS JOIN params p
),
l AS MATERIALIZED (
  SELECT m.*, greatest(l_density, l_cap, l_base, l_excess) AS level_h,
    CASE WHEN l_cap >= greatest(l_density, l_base, l_excess) AND l_cap > 0 THEN 'capacity_ratio'
         WHEN l_density >= greatest(l_base, l_excess) AND l_density > 0 THEN 'density'
         WHEN l_excess >= l_base AND l_excess > 0 THEN 'excess_ratio'
         WHEN l_base > 0 THEN 'baseline_ratio' ELSE 'capacity_ratio' END AS metric
  FROM m
),
best AS (
  SELECT venue_id, ord, arg_min(horizon_min, horizon_min - 10000 * level_h) AS horizon_min, max(hold_h) AS hold_level, bool_or(gate) AS gate
  FROM l GROUP BY venue_id, ord
)
SELECT 'crowd' AS kind, l.metric, 'venue' AS subject_type, l.venue_id AS subject_id,
  l.name_zh AS subject_name_zh, l.name_en AS subject_name_en, l.street_code, l.responsible_unit,
  l.window_start AS event_time, l.level_h AS level, greatest(best.hold_level, l.level_h) AS hold_level,
  l.horizon_min > 0 AS predicted, l.horizon_min,
  CASE l.metric WHEN 'density' THEN cur.density WHEN 'baseline_ratio' THEN cur.base_ratio WHEN 'excess_ratio' THEN cur.excess ELSE cur.cap_ratio END AS observed_value,
  CASE WHEN l.horizon_min > 0 THEN CASE l.metric WHEN 'density' THEN l.density WHEN 'baseline_ratio' THEN l.base_ratio WHEN 'excess_ratio' THEN l.excess ELSE l.cap_ratio END END AS forecast_value,
  CASE l.metric WHEN 'density' THEN threshold_of(l.level_h, p.cd_b, p.cd_y, p.cd_o, p.cd_r)
                WHEN 'baseline_ratio' THEN threshold_of(l.level_h, p.cb_b, p.cb_y, p.cb_o, p.cb_r)
                WHEN 'excess_ratio' THEN threshold_of(l.level_h, p.cx_b, p.cx_y, p.cx_o, p.cx_r)
                ELSE threshold_of(l.level_h, p.cc_b, p.cc_y, p.cc_o, p.cc_r) END AS threshold,
  CASE l.metric WHEN 'density' THEN '人/m²' ELSE 'ratio' END AS unit,
  l.people AS people_count, round(l.people_h) AS forecast_people, l.base AS baseline_value,
  NOT best.gate AS _only_if_active
FROM l JOIN best ON best.venue_id = l.venue_id AND best.ord = l.ord AND best.horizon_min = l.horizon_min
JOIN l cur ON cur.venue_id = l.venue_id AND cur.ord = l.ord AND cur.horizon_min = 0
CROSS JOIN params p
