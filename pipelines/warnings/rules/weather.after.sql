-- Keep only the hours the longest rolling sum needs.
DELETE FROM rain_history WHERE observed_at < (SELECT max(observed_at) FROM rain_history) - to_hours(CAST((SELECT greatest(rain_b_h, rain_y_h, rain_o_h, rain_r_h) FROM params) AS BIGINT) + 1);
