-- Keep only the drop window (and 15 min for the depth trend) of each sensor.
DELETE FROM water_history WHERE observed_at < (SELECT max(observed_at) FROM water_history)
  - to_minutes(CAST((SELECT greatest(drop_window_min, 30) FROM params) AS BIGINT));
