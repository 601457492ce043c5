-- 大客流预警（场所）/ Crowd warning per venue.
-- For the interval just staged: people now and forecast 15/30/60 min ahead (crowd_forecast),
-- each turned into density (people/m²), ratio to capacity, ratio to the usual count for
-- that time of week and excess over the usual count as a share of capacity; the level is the highest any metric reaches at any horizon, the observed
-- one winning ties. A level reached only by a forecast is flagged predicted.
-- This is the fallback for venues without a count of their own: a venue whose own count
-- (raw.crowd_counts, site_id = venue_id) arrived within the last hour is warned from that count by
-- crowd_counts.crowd_venue.sql instead (its cells also hold residents and workers), unless a
-- warning of this rule is still open for it (so that it is lowered and cleared here).
WITH v AS (
  SELECT s.*, vn.name_zh, vn.name_en, vn.capacity_people, vn.area_m2, vn.street_code, vn.responsible_unit
  FROM venue_state s JOIN touched_venues t ON t.venue_id = s.venue_id AND t.window_start = s.window_start
  JOIN venues vn ON vn.venue_id = s.venue_id
  WHERE NOT EXISTS (SELECT 1 FROM venue_count_state c WHERE c.venue_id = s.venue_id AND c.window_start >= s.window_start - INTERVAL 1 HOUR)
     OR s.venue_id IN (SELECT subject_id FROM active_warnings WHERE rule = 'mobile_signal.crowd_venue' AND subject_type = 'venue')
),
h AS (
  SELECT v.*, hz.horizon_min,
    CASE WHEN hz.horizon_min = 0 THEN v.people::DOUBLE
         ELSE crowd_forecast(coalesce(CASE WHEN b.n >= p.min_n THEN b.mean END, v.people::DOUBLE - coalesce(v.a0, 0)),
                             v.a0, anomaly_trend(v.a0, v.a1, v.a2, v.a3), hz.k, p.rho, p.phi) END AS people_h,
    CASE WHEN hz.horizon_min = 0 THEN v.base WHEN b.n >= p.min_n THEN b.mean END AS base_h
  FROM v CROSS JOIN horizons hz CROSS JOIN params p
  LEFT JOIN venue_baseline b ON b.venue_id = v.venue_id
    AND b.slot = slot_of(v.window_start + to_minutes(CAST(hz.horizon_min AS BIGINT)), p.slot_min, p.tz_offset_min)
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
  SELECT venue_id, arg_min(horizon_min, horizon_min - 10000 * level_h) AS horizon_min, max(hold_h) AS hold_level
  FROM l GROUP BY venue_id
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
  l.people AS people_count, round(l.people_h) AS forecast_people, l.base AS baseline_value
FROM l JOIN best ON best.venue_id = l.venue_id AND best.horizon_min = l.horizon_min
JOIN l cur ON cur.venue_id = l.venue_id AND cur.horizon_min = 0
CROSS JOIN params p
