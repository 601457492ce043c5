-- 交通拥堵预警 / Congestion per road segment: index 0–10 = 10 × (1 − speed / free-flow speed),
-- levels from warnings.traffic.congestion_index (Beijing traffic index bands, DB11/T 785:
-- 4–6 light, 6–8 moderate, 8–10 severe congestion).
WITH c AS (
  SELECT i.*, least(10.0, greatest(0.0, 10.0 * (1 - speed_kmh / nullif(free_flow_kmh, 0)))) AS idx
  FROM in_traffic_speeds i WHERE speed_kmh IS NOT NULL AND free_flow_kmh > 0
)
SELECT 'traffic' AS kind, 'congestion_index' AS metric, 'segment' AS subject_type, segment_id AS subject_id,
  coalesce(road_name, '路段 ' || segment_id) AS subject_name_zh, coalesce(road_name, 'Segment ' || segment_id) AS subject_name_en,
  street_code, 'district:traffic' AS responsible_unit, observed_at AS event_time,
  level_of(idx, p.ci_b, p.ci_y, p.ci_o, p.ci_r) AS level, hold_of(idx, p.ci_b, p.ci_y, p.ci_o, p.ci_r, p.hyst) AS hold_level,
  false AS predicted, 0 AS horizon_min, idx AS observed_value, NULL AS forecast_value,
  threshold_of(level_of(idx, p.ci_b, p.ci_y, p.ci_o, p.ci_r), p.ci_b, p.ci_y, p.ci_o, p.ci_r) AS threshold, 'index' AS unit,
  speed_kmh, free_flow_kmh
FROM c CROSS JOIN params p
