-- 大客流预警（场所自有计数）/ Crowd warning per venue from the venue's own count.
-- For the venues counted in the interval just staged (venue_count_in; crowd_counts.state.sql):
-- people now and forecast 15/30/60 min ahead (crowd_forecast on the deviation from the usual count
-- for that time of week), each turned into
--   density (people/m² of usable area), ratio to capacity (最大承载量), ratio to the usual count and
--   excess over the usual count as a share of capacity.
-- The level is the highest that density or the ratio to capacity reaches at any horizon, the
-- observed one winning ties; a level reached only by a forecast is flagged predicted. The ratio to
-- the usual count sets the level only for a venue without a capacity: for a venue with one, a crowd
-- well inside its capacity is not a safety warning however unusual (an ordinary match day), so the
-- ratio to the usual count and the excess are reported with the warning (details usual_ratio,
-- excess_ratio) and drive the forecast, not the level.
-- The forecast: for a venue with a fitted model (venue_forecast_in, written by the engine from the
-- per-venue forecaster of pipelines/warnings/forecast, fitted daily on the venue's own history;
-- venueforecast.go), the higher of the model's forecast p50 and crowd_forecast (the usual count at t+h,
-- plus today's deviation decaying, plus the deviation's damped trend) — so that a warning comes no
-- later than before —, capped by the count now extrapolated by its own damped rising trend; for a venue
-- without one, the lower of crowd_forecast and that extrapolation. Either way a forecast warning needs
-- the crowd's present build-up to point past the threshold: a usual count learned from last week's
-- match (or a rainy evening) does not, alone, forecast a crowd that is not building up.
-- The model's 80 % interval (p10–p90: the spread of its last four weeks' errors) is carried to the
-- forecast used (interval_at) and gives forecast_p10, forecast_p90 and exceed_probability, the chance
-- that the count reaches the level's threshold (schema.sql), which the warning's message states.
WITH v AS (
  SELECT s.*, greatest(anomaly_trend(s.people, s.p1, s.p2, s.p3), 0) AS count_trend,
    vn.name_zh, vn.name_en, vn.capacity_people, vn.area_m2, vn.street_code, vn.responsible_unit
  FROM venue_count_state s JOIN venue_count_in t ON t.venue_id = s.venue_id AND t.window_start = s.window_start
  JOIN venues vn ON vn.venue_id = s.venue_id
),
h AS (
  SELECT v.*, hz.horizon_min,
    CASE WHEN hz.horizon_min = 0 THEN v.people::DOUBLE
         WHEN vf.p50 IS NOT NULL THEN least(greatest(vf.p50, crowd_forecast(coalesce(CASE WHEN b.n >= p.min_n THEN b.mean END, v.people::DOUBLE - coalesce(v.a0, 0)),
                                   v.a0, anomaly_trend(v.a0, v.a1, v.a2, v.a3), hz.k, p.rho, p.phi)), crowd_forecast(v.people::DOUBLE, 0, v.count_trend, hz.k, p.rho, p.phi))
         ELSE least(crowd_forecast(coalesce(CASE WHEN b.n >= p.min_n THEN b.mean END, v.people::DOUBLE - coalesce(v.a0, 0)),
                                   v.a0, anomaly_trend(v.a0, v.a1, v.a2, v.a3), hz.k, p.rho, p.phi),
                    crowd_forecast(v.people::DOUBLE, 0, v.count_trend, hz.k, p.rho, p.phi)) END AS people_h,
    CASE WHEN hz.horizon_min = 0 THEN v.base WHEN b.n >= p.min_n THEN b.mean END AS base_h,
    vf.p10 AS p10_h, vf.p50 AS p50_h, vf.p90 AS p90_h
  FROM v CROSS JOIN horizons hz CROSS JOIN params p
  LEFT JOIN venue_forecast_in vf ON vf.venue_id = v.venue_id AND vf.window_start = v.window_start AND vf.horizon_min = hz.horizon_min
  LEFT JOIN venue_count_baseline b ON b.venue_id = v.venue_id
    AND b.slot = slot_of(v.window_start + to_minutes(CAST(hz.horizon_min AS BIGINT)), p.slot_min, p.tz_offset_min)
),
m AS (
  SELECT h.*,
    coalesce(capacity_people, 0) > 0 AS has_capacity,
    people_h / nullif(area_m2, 0) AS density,
    people_h / nullif(capacity_people, 0) AS cap_ratio,
    CASE WHEN people_h >= p.base_min_people AND base_h > 0 THEN people_h / base_h END AS base_ratio,
    (people_h - base_h) / nullif(capacity_people, 0) AS excess,
    level_of(people_h / nullif(area_m2, 0), p.cd_b, p.cd_y, p.cd_o, p.cd_r) AS l_density,
    level_of(people_h / nullif(capacity_people, 0), p.cc_b, p.cc_y, p.cc_o, p.cc_r) AS l_cap,
    CASE WHEN coalesce(capacity_people, 0) > 0 THEN 0
         ELSE level_of(CASE WHEN people_h >= p.base_min_people AND base_h > 0 THEN people_h / base_h END, p.cb_b, p.cb_y, p.cb_o, p.cb_r) END AS l_base,
    greatest(hold_of(people_h / nullif(area_m2, 0), p.cd_b, p.cd_y, p.cd_o, p.cd_r, p.hyst),
             hold_of(people_h / nullif(capacity_people, 0), p.cc_b, p.cc_y, p.cc_o, p.cc_r, p.hyst),
             CASE WHEN coalesce(capacity_people, 0) > 0 THEN 0
                  ELSE hold_of(CASE WHEN people_h >= p.base_min_people * (1 - p.hyst) AND base_h > 0 THEN people_h / base_h END, p.cb_b, p.cb_y, p.cb_o, p.cb_r, p.hyst) END) AS hold_h
  FROM h CROSS JOIN params p
),
l AS MATERIALIZED (
  SELECT m.*, greatest(l_density, l_cap, l_base) AS level_h,
    CASE WHEN l_cap >= greatest(l_density, l_base) AND l_cap > 0 THEN 'capacity_ratio'
         WHEN l_density >= l_base AND l_density > 0 THEN 'density'
         WHEN l_base > 0 THEN 'baseline_ratio'
         WHEN has_capacity THEN 'capacity_ratio' ELSE 'density' END AS metric
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
  CASE l.metric WHEN 'density' THEN cur.density WHEN 'baseline_ratio' THEN cur.base_ratio ELSE cur.cap_ratio END AS observed_value,
  CASE WHEN l.horizon_min > 0 THEN CASE l.metric WHEN 'density' THEN l.density WHEN 'baseline_ratio' THEN l.base_ratio ELSE l.cap_ratio END END AS forecast_value,
  CASE l.metric WHEN 'density' THEN threshold_of(l.level_h, p.cd_b, p.cd_y, p.cd_o, p.cd_r)
                WHEN 'baseline_ratio' THEN threshold_of(l.level_h, p.cb_b, p.cb_y, p.cb_o, p.cb_r)
                ELSE threshold_of(l.level_h, p.cc_b, p.cc_y, p.cc_o, p.cc_r) END AS threshold,
  CASE l.metric WHEN 'density' THEN '人/m²' ELSE 'ratio' END AS unit,
  l.people AS people_count, round(l.people_h) AS forecast_people, l.base AS baseline_value,
  cur.base_ratio AS usual_ratio, cur.excess AS excess_ratio, 'venue_count' AS count_source,
  CASE WHEN l.horizon_min > 0 THEN round(interval_at(l.people_h, l.p10_h, l.p50_h)) END AS forecast_p10,
  CASE WHEN l.horizon_min > 0 THEN round(interval_at(l.people_h, l.p90_h, l.p50_h)) END AS forecast_p90,
  CASE WHEN l.horizon_min > 0 AND l.level_h > 0 THEN round(exceed_probability(
    CASE l.metric WHEN 'density' THEN threshold_of(l.level_h, p.cd_b, p.cd_y, p.cd_o, p.cd_r) * l.area_m2
                  WHEN 'baseline_ratio' THEN threshold_of(l.level_h, p.cb_b, p.cb_y, p.cb_o, p.cb_r) * l.base_h
                  ELSE threshold_of(l.level_h, p.cc_b, p.cc_y, p.cc_o, p.cc_r) * l.capacity_people END,
    interval_at(l.people_h, l.p10_h, l.p50_h), l.people_h, interval_at(l.people_h, l.p90_h, l.p50_h)), 2) END AS exceed_probability
FROM l JOIN best ON best.venue_id = l.venue_id AND best.horizon_min = l.horizon_min
JOIN l cur ON cur.venue_id = l.venue_id AND cur.horizon_min = 0
CROSS JOIN params p
