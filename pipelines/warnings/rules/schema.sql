-- 预警引擎状态表与公共宏 / State tables and shared macros of the warning engine.
-- Run once when the engine opens its DuckDB file (every statement is idempotent).
-- The one-row table "params" (thresholds from citybrain.yaml, warnings.*) and the
-- table "horizons" (forecast horizons) are rebuilt by the engine at each start.

-- Reference data, copied from raw.grid_cells, raw.venues and raw.venue_cells.
CREATE TABLE IF NOT EXISTS grid_cells (grid_cell_id VARCHAR PRIMARY KEY, street_code VARCHAR, area_m2 DOUBLE);
CREATE TABLE IF NOT EXISTS venues (venue_id VARCHAR PRIMARY KEY, name_zh VARCHAR, name_en VARCHAR, kind VARCHAR,
  capacity_people BIGINT, area_m2 DOUBLE, street_code VARCHAR, responsible_unit VARCHAR);
CREATE TABLE IF NOT EXISTS venue_cells (venue_id VARCHAR, grid_cell_id VARCHAR, share DOUBLE);

-- Crowd: the latest interval of each grid cell / venue with the deviations from the usual count
-- (a0 now, a1..a3 the three intervals before), and the usual count per time-of-week slot,
-- kept incrementally (running mean of every past interval of that slot).
-- (No primary keys on the per-cell tables: at 262k cells, hash joins with delete + insert are much
-- faster than index upserts; the state statements keep one row per key.)
CREATE TABLE IF NOT EXISTS cell_state (grid_cell_id VARCHAR, window_start TIMESTAMP, people BIGINT,
  base DOUBLE, a0 DOUBLE, a1 DOUBLE, a2 DOUBLE, a3 DOUBLE);
CREATE TABLE IF NOT EXISTS cell_baseline (grid_cell_id VARCHAR, slot INTEGER, n BIGINT, mean DOUBLE);
-- The staged cells' new state rows, then their previous interval and its folded baseline row
-- (created anew by mobile_signal.state.sql, step 1, for each interval; declared here for the rules).
CREATE TEMP TABLE IF NOT EXISTS cell_next (grid_cell_id VARCHAR, window_start TIMESTAMP, people BIGINT,
  base DOUBLE, a0 DOUBLE, a1 DOUBLE, a2 DOUBLE, a3 DOUBLE,
  prev_window_start TIMESTAMP, fold_slot INTEGER, fold_n BIGINT, fold_mean DOUBLE);
CREATE TABLE IF NOT EXISTS venue_state (venue_id VARCHAR PRIMARY KEY, window_start TIMESTAMP, people BIGINT, cells INTEGER,
  base DOUBLE, a0 DOUBLE, a1 DOUBLE, a2 DOUBLE, a3 DOUBLE);
-- Venues whose cells are in the staged interval (refilled by mobile_signal.state.sql).
CREATE TEMP TABLE IF NOT EXISTS touched_venues (venue_id VARCHAR, window_start TIMESTAMP);
CREATE TABLE IF NOT EXISTS venue_baseline (venue_id VARCHAR, slot INTEGER, n BIGINT, mean DOUBLE, PRIMARY KEY (venue_id, slot));
-- A venue's own count (raw.crowd_counts, site_id = venue_id, direction total: an electronic fence
-- or gate counters), kept like venue_state / venue_baseline by crowd_counts.state.sql.
-- (p1..p3: the counts of the three intervals before, for the count trend of crowd_counts.crowd_venue.sql.)
CREATE TABLE IF NOT EXISTS venue_count_state (venue_id VARCHAR PRIMARY KEY, window_start TIMESTAMP, people BIGINT,
  base DOUBLE, a0 DOUBLE, a1 DOUBLE, a2 DOUBLE, a3 DOUBLE, p1 DOUBLE, p2 DOUBLE, p3 DOUBLE);
CREATE TABLE IF NOT EXISTS venue_count_baseline (venue_id VARCHAR, slot INTEGER, n BIGINT, mean DOUBLE, PRIMARY KEY (venue_id, slot));
CREATE TEMP TABLE IF NOT EXISTS venue_count_in (venue_id VARCHAR, window_start TIMESTAMP, people BIGINT);
-- Each venue's counts (warnings.crowd.forecaster.history_days of them), which its fitted forecaster
-- is refitted on (venueforecast.go); fold: what a count at a warning level adds to the usual count (the
-- level's threshold; NULL: the count itself).
CREATE TABLE IF NOT EXISTS venue_count_history (venue_id VARCHAR, window_start TIMESTAMP, people DOUBLE, fold DOUBLE,
  PRIMARY KEY (venue_id, window_start));
-- The fitted forecasts of the staged venue intervals (written by the engine before the rules run).
CREATE TEMP TABLE IF NOT EXISTS venue_forecast_in (venue_id VARCHAR, window_start TIMESTAMP, horizon_min INTEGER,
  p50 DOUBLE, p10 DOUBLE, p90 DOUBLE);

-- Rain per station (the last hours only), water telemetry (the last drop window), collisions (the last collision window).
CREATE TABLE IF NOT EXISTS rain_history (station VARCHAR, observed_at TIMESTAMP, rain_mm DOUBLE, PRIMARY KEY (station, observed_at));
CREATE TABLE IF NOT EXISTS water_history (sensor_id VARCHAR, kind VARCHAR, observed_at TIMESTAMP, value DOUBLE,
  site_kind VARCHAR, alarm BOOLEAN, street_code VARCHAR, PRIMARY KEY (sensor_id, kind, observed_at));
CREATE TABLE IF NOT EXISTS collision_history (id VARCHAR PRIMARY KEY, occurred_at TIMESTAMP, spot VARCHAR, on_street VARCHAR, street_code VARCHAR);

-- 等级：0 无，1 蓝，2 黄，3 橙，4 红 / Level: 0 none, 1 blue, 2 yellow, 3 orange, 4 red.
CREATE OR REPLACE MACRO level_of(x, b, y, o, r) AS
  CASE WHEN x IS NULL OR isnan(x) THEN 0 WHEN x >= r THEN 4 WHEN x >= o THEN 3 WHEN x >= y THEN 2 WHEN x >= b THEN 1 ELSE 0 END;
-- The level a warning keeps under hysteresis: every threshold lowered by the fraction h.
CREATE OR REPLACE MACRO hold_of(x, b, y, o, r, h) AS level_of(x, b * (1 - h), y * (1 - h), o * (1 - h), r * (1 - h));
CREATE OR REPLACE MACRO threshold_of(lvl, b, y, o, r) AS
  CASE lvl WHEN 4 THEN r WHEN 3 THEN o WHEN 2 THEN y WHEN 1 THEN b END;
-- Time-of-week slot (Monday 00:00 local = slot 0).
CREATE OR REPLACE MACRO slot_of(ts, slot_min, tz_offset_min) AS
  CAST(floor(((isodow(ts + to_minutes(CAST(tz_offset_min AS BIGINT))) - 1) * 1440
    + hour(ts + to_minutes(CAST(tz_offset_min AS BIGINT))) * 60
    + minute(ts + to_minutes(CAST(tz_offset_min AS BIGINT)))) / slot_min) AS INTEGER);
-- 客流预测 / Crowd forecast k intervals ahead: the usual count then, plus today's deviation
-- decaying by rho per interval, plus the deviation's trend damped by phi per interval.
CREATE OR REPLACE MACRO crowd_forecast(base_future, anomaly, trend, k, rho, phi) AS
  greatest(0.0, base_future + coalesce(anomaly, 0) * pow(rho, k)
    + coalesce(trend, 0) * CASE WHEN phi >= 1 THEN k ELSE phi * (1 - pow(phi, k)) / (1 - phi) END);
-- 超过阈值的概率 / Probability that a count forecast at p50 with the 80 % interval p10–p90 reaches x:
-- log(count + 1) taken as normal, σ from the interval (p10 and p90 are 1.2816 σ either side), Φ by the
-- logistic approximation Φ(u) ≈ 1 / (1 + e^(−1.702 u)) (off by less than 0.01). NULL without an interval.
-- The bound q of the fitted model's interval around its forecast p50, carried to the rule's forecast f
-- (the same spread of relative errors): (f + 1) (q + 1) / (p50 + 1) − 1.
-- NULL when the model gave no forecast (DuckDB's greatest skips NULLs: checked first).
CREATE OR REPLACE MACRO interval_at(f, q, p50) AS
  CASE WHEN f IS NOT NULL AND q IS NOT NULL AND p50 IS NOT NULL THEN greatest((f + 1) * (q + 1) / (greatest(p50, 0) + 1) - 1, 0) END;
CREATE OR REPLACE MACRO exceed_probability(x, p10, p50, p90) AS
  CASE WHEN x IS NOT NULL AND p10 IS NOT NULL AND p50 IS NOT NULL AND p90 IS NOT NULL THEN
  1 / (1 + exp(least(greatest(1.702 * (ln(greatest(x, 0) + 1) - ln(greatest(p50, 0) + 1))
                             / greatest((ln(greatest(p90, 0) + 1) - ln(greatest(p10, 0) + 1)) / 2.5631, 0.001), -50), 50))) END;
-- Trend per interval of the deviations (two-interval means, to damp the noise).
CREATE OR REPLACE MACRO anomaly_trend(a0, a1, a2, a3) AS
  CASE WHEN a3 IS NOT NULL THEN ((a0 + a1) - (a2 + a3)) / 4.0
       WHEN a1 IS NOT NULL THEN (a0 - a1) / 2.0 ELSE 0 END;

-- Lifecycle state kept by the engine (Go): one row per active warning; rules may read it
-- (e.g. to emit a signal for a subject only when it is at a level or has a warning to clear).
CREATE TABLE IF NOT EXISTS active_warnings (rule VARCHAR, subject_type VARCHAR, subject_id VARCHAR, state_json VARCHAR,
  PRIMARY KEY (rule, subject_type, subject_id));
-- Kafka position of the engine (topic, partition → next offset), changed with the state.
CREATE TABLE IF NOT EXISTS engine_offsets (topic VARCHAR, part INTEGER, next_offset BIGINT, PRIMARY KEY (topic, part));
-- Transitions not yet in marts.warnings, and notifications not yet delivered.
CREATE TABLE IF NOT EXISTS outbox (seq BIGINT PRIMARY KEY, json VARCHAR);
CREATE TABLE IF NOT EXISTS notify_queue (seq BIGINT PRIMARY KEY, json VARCHAR);
CREATE TABLE IF NOT EXISTS engine_meta (key VARCHAR PRIMARY KEY, value VARCHAR);
