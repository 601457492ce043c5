-- 降雨：记录逐小时雨量 / Rain: keep the hourly rain of each station.
INSERT OR REPLACE INTO rain_history
SELECT station, observed_at, coalesce(rain_mm, 0) FROM in_weather WHERE observed_at IS NOT NULL;
