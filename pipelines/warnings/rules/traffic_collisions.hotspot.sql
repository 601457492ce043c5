-- 事故多发点预警 / Collision hot spot: collisions in the same cell (warnings.traffic.collision_cell_deg,
-- about 500 m) within the collision window, counted at each staged collision.
WITH s AS (
  SELECT h.spot, h.occurred_at, h.street_code,
    (SELECT count(*) FROM collision_history x WHERE x.spot = h.spot AND x.occurred_at <= h.occurred_at
       AND x.occurred_at > h.occurred_at - to_minutes(CAST(p.col_window_min AS BIGINT))) AS n,
    (SELECT mode(x.on_street) FROM collision_history x WHERE x.spot = h.spot) AS street
  FROM collision_history h JOIN in_traffic_collisions i ON i.id = h.id CROSS JOIN params p
)
SELECT 'traffic' AS kind, 'collisions' AS metric, 'segment' AS subject_type, 'spot:' || spot AS subject_id,
  '事故多发点 ' || coalesce(nullif(trim(street), ''), spot) AS subject_name_zh, 'Collision hot spot ' || coalesce(nullif(trim(street), ''), spot) AS subject_name_en,
  street_code, 'district:traffic' AS responsible_unit, occurred_at AS event_time,
  level_of(n, p.col_b, p.col_y, p.col_o, p.col_r) AS level, hold_of(n, p.col_b, p.col_y, p.col_o, p.col_r, p.hyst) AS hold_level,
  false AS predicted, 0 AS horizon_min, n AS observed_value, NULL AS forecast_value,
  threshold_of(level_of(n, p.col_b, p.col_y, p.col_o, p.col_r), p.col_b, p.col_y, p.col_o, p.col_r) AS threshold, '起 collisions' AS unit
FROM s CROSS JOIN params p
