-- 暴雨预警信号 / Rainstorm signal per station, from rolling rain sums (China Meteorological
-- Administration signal levels, warnings.rain): blue ≥ 50 mm in 12 h, yellow ≥ 50 mm in 6 h,
-- orange ≥ 50 mm in 3 h, red ≥ 100 mm in 3 h. A sum over N hours is the N hourly observations
-- ending with this one. Hysteresis lowers every threshold by the fraction hyst.
WITH s AS (
  SELECT r.station, r.observed_at, r.rain_mm,
    (SELECT sum(x.rain_mm) FROM rain_history x WHERE x.station = r.station AND x.observed_at > r.observed_at - to_hours(p.rain_b_h) AND x.observed_at <= r.observed_at) AS sum_b,
    (SELECT sum(x.rain_mm) FROM rain_history x WHERE x.station = r.station AND x.observed_at > r.observed_at - to_hours(p.rain_y_h) AND x.observed_at <= r.observed_at) AS sum_y,
    (SELECT sum(x.rain_mm) FROM rain_history x WHERE x.station = r.station AND x.observed_at > r.observed_at - to_hours(p.rain_o_h) AND x.observed_at <= r.observed_at) AS sum_o,
    (SELECT sum(x.rain_mm) FROM rain_history x WHERE x.station = r.station AND x.observed_at > r.observed_at - to_hours(p.rain_r_h) AND x.observed_at <= r.observed_at) AS sum_r
  FROM rain_history r JOIN in_weather i ON i.station = r.station AND i.observed_at = r.observed_at CROSS JOIN params p
),
l AS (
  SELECT s.*,
    CASE WHEN sum_r >= p.rain_r_mm THEN 4 WHEN sum_o >= p.rain_o_mm THEN 3 WHEN sum_y >= p.rain_y_mm THEN 2 WHEN sum_b >= p.rain_b_mm THEN 1 ELSE 0 END AS level,
    CASE WHEN sum_r >= p.rain_r_mm * (1 - p.hyst) THEN 4 WHEN sum_o >= p.rain_o_mm * (1 - p.hyst) THEN 3
         WHEN sum_y >= p.rain_y_mm * (1 - p.hyst) THEN 2 WHEN sum_b >= p.rain_b_mm * (1 - p.hyst) THEN 1 ELSE 0 END AS hold_level
  FROM s CROSS JOIN params p
)
SELECT 'rainstorm' AS kind,
  CASE level WHEN 4 THEN 'rain_' || p.rain_r_h || 'h' WHEN 3 THEN 'rain_' || p.rain_o_h || 'h'
             WHEN 2 THEN 'rain_' || p.rain_y_h || 'h' ELSE 'rain_' || p.rain_b_h || 'h' END AS metric,
  'station' AS subject_type, station AS subject_id,
  station || ' 站' AS subject_name_zh, station || ' station' AS subject_name_en,
  NULL AS street_code, 'district:weather' AS responsible_unit,
  observed_at AS event_time, level, hold_level, false AS predicted, 0 AS horizon_min,
  CASE level WHEN 4 THEN sum_r WHEN 3 THEN sum_o WHEN 2 THEN sum_y ELSE sum_b END AS observed_value,
  NULL AS forecast_value,
  CASE level WHEN 4 THEN p.rain_r_mm WHEN 3 THEN p.rain_o_mm WHEN 2 THEN p.rain_y_mm WHEN 1 THEN p.rain_b_mm END AS threshold,
  'mm' AS unit, sum_o AS sum_3h, sum_y AS sum_6h, sum_b AS sum_12h
FROM l CROSS JOIN params p
