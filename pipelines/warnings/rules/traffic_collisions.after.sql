DELETE FROM collision_history WHERE occurred_at < (SELECT max(occurred_at) FROM collision_history)
  - to_minutes(CAST((SELECT col_window_min FROM params) AS BIGINT));
