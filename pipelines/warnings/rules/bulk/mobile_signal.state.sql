-- 手机信令：批量追赶 / Mobile signal, catch-up in bulk: the state of many intervals at once.
-- in_mobile_signal holds many intervals (one row per grid cell and interval). The result is what
-- ../mobile_signal.state.sql computes interval by interval, oldest first, as sets:
--   * each cell's sequence is its stored state (ord 0) followed by its staged intervals in order
--     (ord 1..n); row k is folded into the usual count of its slot when row k+1 is later (a
--     correction of the same interval folds nothing);
--   * the usual count a row sees (its own slot, and the forecast horizons' slots in the rule) is the
--     stored baseline row plus the folds before it: n0 + cumulative count, (n0·mean0 + cumulative
--     sum) / n — the running mean, as a cumulative average (equal up to floating-point rounding).
--     bulk_cell_base holds it as versions per cell and slot, each valid over a range of ords (the
--     stored row from ord 0, each fold from the pass after the folded interval), read with an
--     equality join plus the range. (An ASOF join was 3× slower over these ~80,000 tiny partitions, and
--     inside the batch's transaction DuckDB planned it as a nested-loop join: 3 min for a day.)
--   * a1..a3 are LAGs of a0 with the gap rule (a gap of more than three intervals drops them; a
--     corrected interval keeps the stored ones).
-- The venues (fallback rule) go the same way from the sum of their cells per interval.
-- Nothing here changes the stored state: mobile_signal.commit.sql does, after the rules ran.

-- 1. The cells' sequences.
CREATE OR REPLACE TEMP TABLE bulk_cell_seq AS
WITH r AS (
  SELECT grid_cell_id, window_start, people_count AS people,
    CAST(NULL AS DOUBLE) AS a0, CAST(NULL AS DOUBLE) AS a1, CAST(NULL AS DOUBLE) AS a2, CAST(NULL AS DOUBLE) AS a3,
    row_number() OVER (PARTITION BY grid_cell_id ORDER BY window_start) AS ord
  FROM in_mobile_signal
  UNION ALL
  SELECT grid_cell_id, window_start, people, a0, a1, a2, a3, 0
  FROM cell_state WHERE grid_cell_id IN (SELECT grid_cell_id FROM in_mobile_signal)
)
SELECT r.*, slot_of(r.window_start, p.slot_min, p.tz_offset_min) AS slot,
  lag(r.window_start) OVER w AS prev_ws,
  coalesce(lead(r.window_start) OVER w > r.window_start, false) AS folded
FROM r CROSS JOIN params p
WINDOW w AS (PARTITION BY r.grid_cell_id ORDER BY r.ord);

-- 2. The folds: per cell and slot, the running count and sum of the folded intervals, in order; the
--    stored baseline rows of the slots the intervals and their forecast horizons fall in; the
--    versions of the usual count.
CREATE OR REPLACE TEMP TABLE bulk_cell_fold AS
SELECT grid_cell_id, slot, ord, count(*) OVER w AS cn, sum(people) OVER w AS cs
FROM bulk_cell_seq WHERE folded
WINDOW w AS (PARTITION BY grid_cell_id, slot ORDER BY ord ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW);
CREATE OR REPLACE TEMP TABLE bulk_cell_base0 AS
SELECT * FROM cell_baseline WHERE grid_cell_id IN (SELECT grid_cell_id FROM bulk_cell_seq)
  AND slot IN (SELECT slot FROM bulk_cell_seq
               UNION SELECT slot_of(w.window_start + to_minutes(CAST(hz.horizon_min AS BIGINT)), p.slot_min, p.tz_offset_min)
               FROM (SELECT DISTINCT window_start FROM bulk_cell_seq) w CROSS JOIN horizons hz CROSS JOIN params p);
CREATE OR REPLACE TEMP TABLE bulk_cell_base AS
WITH v AS (
  SELECT grid_cell_id, slot, ord + 1 AS from_ord, cn, cs FROM bulk_cell_fold
  UNION ALL
  SELECT grid_cell_id, slot, 0, 0, 0 FROM bulk_cell_base0
)
SELECT v.grid_cell_id, v.slot, v.from_ord,
  coalesce(lead(v.from_ord) OVER (PARTITION BY v.grid_cell_id, v.slot ORDER BY v.from_ord), 9223372036854775807) AS to_ord,
  coalesce(b0.n, 0) + v.cn AS n, (coalesce(b0.n * b0.mean, 0) + v.cs) / (coalesce(b0.n, 0) + v.cn) AS mean
FROM v LEFT JOIN bulk_cell_base0 b0 ON b0.grid_cell_id = v.grid_cell_id AND b0.slot = v.slot;

-- 3. The staged intervals' new state rows (what cell_state holds after each of their passes).
CREATE OR REPLACE TEMP TABLE bulk_cell_rows AS
WITH b AS (
  SELECT s.grid_cell_id, s.ord, s.window_start, s.people, s.slot, s.prev_ws, s.a0 AS s_a0, s.a1 AS s_a1, s.a2 AS s_a2, s.a3 AS s_a3,
    bv.n, bv.mean
  FROM bulk_cell_seq s
  LEFT JOIN bulk_cell_base bv ON bv.grid_cell_id = s.grid_cell_id AND bv.slot = s.slot AND s.ord >= bv.from_ord AND s.ord < bv.to_ord
),
d AS (
  SELECT b.*,
    CASE WHEN b.ord > 0 AND b.n >= p.min_n THEN b.mean END AS base,
    CASE WHEN b.ord = 0 THEN b.s_a0 WHEN b.n >= p.min_n THEN b.people - b.mean ELSE 0 END AS a0,
    b.ord > 0 AND b.prev_ws = b.window_start AS corr,
    b.ord > 0 AND b.prev_ws >= b.window_start - to_minutes(CAST(3 * p.interval_min AS BIGINT)) AS ok
  FROM b CROSS JOIN params p
),
l1 AS (
  SELECT d.*, CASE WHEN ord = 0 THEN s_a1 WHEN corr THEN lag(s_a1) OVER w WHEN ok THEN lag(a0) OVER w END AS a1
  FROM d WINDOW w AS (PARTITION BY grid_cell_id ORDER BY ord)
),
l2 AS (
  SELECT l1.*, CASE WHEN ord = 0 THEN s_a2 WHEN corr THEN lag(s_a2) OVER w WHEN ok THEN lag(a1) OVER w END AS a2
  FROM l1 WINDOW w AS (PARTITION BY grid_cell_id ORDER BY ord)
),
l3 AS (
  SELECT l2.*, CASE WHEN ord = 0 THEN s_a3 WHEN corr THEN lag(s_a3) OVER w WHEN ok THEN lag(a2) OVER w END AS a3
  FROM l2 WINDOW w AS (PARTITION BY grid_cell_id ORDER BY ord)
)
SELECT grid_cell_id, ord, window_start, people, base, a0, a1, a2, a3 FROM l3 WHERE ord > 0;

-- 4. Venues: the people of a venue in a staged interval are the sum over its cells whose state, at
--    that interval's pass, is that interval: the staged rows, and the stored rows of cells with no
--    staged row at or before them (an interval split over micro-batches).
CREATE OR REPLACE TEMP TABLE bulk_venue_now AS
WITH cells_at AS (
  SELECT grid_cell_id, window_start, people FROM bulk_cell_seq WHERE ord > 0
  UNION ALL
  SELECT c.grid_cell_id, c.window_start, c.people FROM cell_state c
  WHERE c.grid_cell_id IN (SELECT grid_cell_id FROM venue_cells)
    AND NOT EXISTS (SELECT 1 FROM bulk_cell_seq s WHERE s.grid_cell_id = c.grid_cell_id AND s.ord = 1 AND s.window_start <= c.window_start)
),
touched AS (
  SELECT DISTINCT vc.venue_id, s.window_start FROM bulk_cell_seq s JOIN venue_cells vc USING (grid_cell_id) WHERE s.ord > 0
)
SELECT t.venue_id, t.window_start, CAST(round(sum(c.people * coalesce(vc.share, 1.0))) AS BIGINT) AS people, count(*) AS cells
FROM touched t JOIN venue_cells vc USING (venue_id)
JOIN cells_at c ON c.grid_cell_id = vc.grid_cell_id AND c.window_start = t.window_start
GROUP BY t.venue_id, t.window_start;

CREATE OR REPLACE TEMP TABLE bulk_venue_seq AS
WITH r AS (
  SELECT venue_id, window_start, people, cells,
    CAST(NULL AS DOUBLE) AS a0, CAST(NULL AS DOUBLE) AS a1, CAST(NULL AS DOUBLE) AS a2, CAST(NULL AS DOUBLE) AS a3,
    row_number() OVER (PARTITION BY venue_id ORDER BY window_start) AS ord
  FROM bulk_venue_now
  UNION ALL
  SELECT venue_id, window_start, people, cells, a0, a1, a2, a3, 0
  FROM venue_state WHERE venue_id IN (SELECT venue_id FROM bulk_venue_now)
)
SELECT r.*, slot_of(r.window_start, p.slot_min, p.tz_offset_min) AS slot,
  lag(r.window_start) OVER w AS prev_ws,
  coalesce(lead(r.window_start) OVER w > r.window_start, false) AS folded
FROM r CROSS JOIN params p
WINDOW w AS (PARTITION BY r.venue_id ORDER BY r.ord);

CREATE OR REPLACE TEMP TABLE bulk_venue_fold AS
SELECT venue_id, slot, ord, count(*) OVER w AS cn, sum(people) OVER w AS cs
FROM bulk_venue_seq WHERE folded
WINDOW w AS (PARTITION BY venue_id, slot ORDER BY ord ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW);
CREATE OR REPLACE TEMP TABLE bulk_venue_base0 AS
SELECT * FROM venue_baseline WHERE venue_id IN (SELECT venue_id FROM bulk_venue_seq)
  AND slot IN (SELECT slot FROM bulk_venue_seq
               UNION SELECT slot_of(w.window_start + to_minutes(CAST(hz.horizon_min AS BIGINT)), p.slot_min, p.tz_offset_min)
               FROM (SELECT DISTINCT window_start FROM bulk_venue_seq) w CROSS JOIN horizons hz CROSS JOIN params p);
CREATE OR REPLACE TEMP TABLE bulk_venue_base AS
WITH v AS (
  SELECT venue_id, slot, ord + 1 AS from_ord, cn, cs FROM bulk_venue_fold
  UNION ALL
  SELECT venue_id, slot, 0, 0, 0 FROM bulk_venue_base0
)
SELECT v.venue_id, v.slot, v.from_ord,
  coalesce(lead(v.from_ord) OVER (PARTITION BY v.venue_id, v.slot ORDER BY v.from_ord), 9223372036854775807) AS to_ord,
  coalesce(b0.n, 0) + v.cn AS n, (coalesce(b0.n * b0.mean, 0) + v.cs) / (coalesce(b0.n, 0) + v.cn) AS mean
FROM v LEFT JOIN bulk_venue_base0 b0 ON b0.venue_id = v.venue_id AND b0.slot = v.slot;

CREATE OR REPLACE TEMP TABLE bulk_venue_rows AS
WITH b AS (
  SELECT s.venue_id, s.ord, s.window_start, s.people, s.cells, s.slot, s.prev_ws, s.a0 AS s_a0, s.a1 AS s_a1, s.a2 AS s_a2, s.a3 AS s_a3,
    bv.n, bv.mean
  FROM bulk_venue_seq s
  LEFT JOIN bulk_venue_base bv ON bv.venue_id = s.venue_id AND bv.slot = s.slot AND s.ord >= bv.from_ord AND s.ord < bv.to_ord
),
d AS (
  SELECT b.*,
    CASE WHEN b.ord > 0 AND b.n >= p.min_n THEN b.mean END AS base,
    CASE WHEN b.ord = 0 THEN b.s_a0 WHEN b.n >= p.min_n THEN b.people - b.mean ELSE 0 END AS a0,
    b.ord > 0 AND b.prev_ws = b.window_start AS corr,
    b.ord > 0 AND b.prev_ws >= b.window_start - to_minutes(CAST(3 * p.interval_min AS BIGINT)) AS ok
  FROM b CROSS JOIN params p
),
l1 AS (
  SELECT d.*, CASE WHEN ord = 0 THEN s_a1 WHEN corr THEN lag(s_a1) OVER w WHEN ok THEN lag(a0) OVER w END AS a1
  FROM d WINDOW w AS (PARTITION BY venue_id ORDER BY ord)
),
l2 AS (
  SELECT l1.*, CASE WHEN ord = 0 THEN s_a2 WHEN corr THEN lag(s_a2) OVER w WHEN ok THEN lag(a1) OVER w END AS a2
  FROM l1 WINDOW w AS (PARTITION BY venue_id ORDER BY ord)
),
l3 AS (
  SELECT l2.*, CASE WHEN ord = 0 THEN s_a3 WHEN corr THEN lag(s_a3) OVER w WHEN ok THEN lag(a2) OVER w END AS a3
  FROM l2 WINDOW w AS (PARTITION BY venue_id ORDER BY ord)
)
SELECT venue_id, ord, window_start, people, cells, base, a0, a1, a2, a3 FROM l3 WHERE ord > 0;
