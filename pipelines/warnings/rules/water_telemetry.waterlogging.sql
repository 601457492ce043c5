-- 内涝预警 / Waterlogging at low points and underpasses: water depth (m) against warnings.lifeline.water_depth_m
-- (Beijing closes an underpass at 27 cm), forecast 30 min ahead from the depth's trend over the
-- last 15 min; combined with the heaviest 3-hour rain of any station (rain_3h_mm) for the message.
WITH w AS (
  SELECT h.sensor_id, h.observed_at, h.value AS depth, h.street_code, h.site_kind,
    (SELECT x.value FROM water_history x WHERE x.sensor_id = h.sensor_id AND x.kind = h.kind
       AND x.observed_at <= h.observed_at - INTERVAL 15 MINUTE ORDER BY x.observed_at DESC LIMIT 1) AS depth_15,
    (SELECT x.observed_at FROM water_history x WHERE x.sensor_id = h.sensor_id AND x.kind = h.kind
       AND x.observed_at <= h.observed_at - INTERVAL 15 MINUTE ORDER BY x.observed_at DESC LIMIT 1) AS at_15
  FROM water_history h JOIN in_water_telemetry i ON i.sensor_id = h.sensor_id AND i.kind = h.kind AND i.observed_at = h.observed_at
  WHERE h.kind = 'water_level' AND coalesce(h.site_kind, 'low_point') IN ('low_point', 'underpass', 'other')
),
f AS (
  SELECT w.*,
    CASE WHEN depth_15 IS NOT NULL AND observed_at > at_15
         THEN greatest(0, depth + (depth - depth_15) * 30.0 / (epoch(observed_at - at_15) / 60.0)) END AS depth_30
  FROM w
),
l AS (
  SELECT f.*,
    level_of(depth, p.wd_b, p.wd_y, p.wd_o, p.wd_r) AS l_now,
    level_of(depth_30, p.wd_b, p.wd_y, p.wd_o, p.wd_r) AS l_30,
    greatest(hold_of(depth, p.wd_b, p.wd_y, p.wd_o, p.wd_r, p.hyst), hold_of(depth_30, p.wd_b, p.wd_y, p.wd_o, p.wd_r, p.hyst)) AS hold_level
  FROM f CROSS JOIN params p
)
SELECT 'waterlogging' AS kind, 'water_depth' AS metric, 'sensor' AS subject_type, sensor_id AS subject_id,
  '积水监测点 ' || sensor_id AS subject_name_zh, 'Water-depth sensor ' || sensor_id AS subject_name_en,
  street_code, CASE WHEN street_code IS NOT NULL THEN 'street:' || street_code ELSE 'district:water' END AS responsible_unit,
  observed_at AS event_time, greatest(l_now, l_30) AS level, greatest(hold_level, l_now, l_30) AS hold_level,
  l_30 > l_now AS predicted, CASE WHEN l_30 > l_now THEN 30 ELSE 0 END AS horizon_min,
  depth AS observed_value, CASE WHEN l_30 > l_now THEN depth_30 END AS forecast_value,
  threshold_of(greatest(l_now, l_30), p.wd_b, p.wd_y, p.wd_o, p.wd_r) AS threshold, 'm' AS unit,
  (SELECT max(s) FROM (SELECT sum(rain_mm) AS s FROM rain_history r
     WHERE r.observed_at > (SELECT max(observed_at) FROM rain_history) - INTERVAL 3 HOUR GROUP BY station)) AS rain_3h_mm
FROM l CROSS JOIN params p
