-- 管网与积水监测：保留最近一段观测 / Lifeline telemetry: keep the recent observations of each sensor.
INSERT OR REPLACE INTO water_history
SELECT sensor_id, kind, observed_at, value, site_kind, alarm, street_code FROM in_water_telemetry;
