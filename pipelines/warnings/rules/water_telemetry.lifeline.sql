-- 生命线预警 / Lifeline warnings per sensor:
--   pressure out of the band [pressure_min_mpa, pressure_max_mpa] (relative distance outside it),
--   a sudden drop of pressure or rise of flow against the sensor's mean over the drop window (pipe burst),
--   gas concentration in %LEL (a device alarm counts as at least orange).
-- The affected street is the sensor's street_code.
WITH cur AS (
  SELECT h.*,
    (SELECT avg(x.value) FROM water_history x WHERE x.sensor_id = h.sensor_id AND x.kind = h.kind
       AND x.observed_at < h.observed_at AND x.observed_at >= h.observed_at - to_minutes(CAST(p.drop_window_min AS BIGINT))) AS recent_mean
  FROM water_history h JOIN in_water_telemetry i ON i.sensor_id = h.sensor_id AND i.kind = h.kind AND i.observed_at = h.observed_at
  CROSS JOIN params p
  WHERE h.kind IN ('pressure', 'flow', 'gas')
),
m AS (
  SELECT cur.*,
    CASE kind WHEN 'pressure' THEN greatest((p.p_min - value) / p.p_min, (value - p.p_max) / p.p_max) END AS out_of_band,
    CASE kind WHEN 'pressure' THEN (recent_mean - value) / nullif(recent_mean, 0)
              WHEN 'flow' THEN (value - recent_mean) / nullif(recent_mean, 0) END AS jump
  FROM cur CROSS JOIN params p
),
l AS (
  SELECT m.*,
    level_of(out_of_band, p.oob_b, p.oob_y, p.oob_o, p.oob_r) AS l_band,
    level_of(jump, p.drop_b, p.drop_y, p.drop_o, p.drop_r) AS l_jump,
    CASE WHEN kind = 'gas' THEN greatest(level_of(value, p.gas_b, p.gas_y, p.gas_o, p.gas_r), CASE WHEN alarm THEN 3 ELSE 0 END) ELSE 0 END AS l_gas,
    greatest(hold_of(out_of_band, p.oob_b, p.oob_y, p.oob_o, p.oob_r, p.hyst),
             hold_of(jump, p.drop_b, p.drop_y, p.drop_o, p.drop_r, p.hyst),
             CASE WHEN kind = 'gas' THEN greatest(hold_of(value, p.gas_b, p.gas_y, p.gas_o, p.gas_r, p.hyst), CASE WHEN alarm THEN 3 ELSE 0 END) ELSE 0 END) AS hold_level
  FROM m CROSS JOIN params p
),
pick AS (
  SELECT l.*, greatest(l_band, l_jump, l_gas) AS level,
    CASE WHEN kind = 'gas' THEN 'gas_lel' WHEN l_jump >= l_band AND l_jump > 0 THEN kind || '_burst' ELSE 'pressure_band' END AS metric
  FROM l
)
SELECT 'lifeline' AS kind, metric, 'sensor' AS subject_type, sensor_id AS subject_id,
  CASE kind WHEN 'gas' THEN '燃气监测点 ' WHEN 'flow' THEN '流量监测点 ' ELSE '压力监测点 ' END || sensor_id AS subject_name_zh,
  CASE kind WHEN 'gas' THEN 'Gas sensor ' WHEN 'flow' THEN 'Flow sensor ' ELSE 'Pressure sensor ' END || sensor_id AS subject_name_en,
  street_code, CASE WHEN kind = 'gas' THEN 'district:gas' ELSE 'district:water' END AS responsible_unit,
  observed_at AS event_time, level, greatest(hold_level, level) AS hold_level, false AS predicted, 0 AS horizon_min,
  CASE metric WHEN 'gas_lel' THEN value WHEN 'pressure_band' THEN out_of_band ELSE jump END AS observed_value,
  NULL AS forecast_value,
  CASE metric WHEN 'gas_lel' THEN threshold_of(level, p.gas_b, p.gas_y, p.gas_o, p.gas_r)
              WHEN 'pressure_band' THEN threshold_of(level, p.oob_b, p.oob_y, p.oob_o, p.oob_r)
              ELSE threshold_of(level, p.drop_b, p.drop_y, p.drop_o, p.drop_r) END AS threshold,
  CASE metric WHEN 'gas_lel' THEN '%LEL' ELSE 'ratio' END AS unit,
  value AS raw_value, recent_mean
FROM pick CROSS JOIN params p
