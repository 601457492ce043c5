-- 场所客流计数：批量追赶 / Venue counts, catch-up in bulk: the state of the intervals left in
-- venue_count_in, as ../crowd_counts.state.sql computes it interval by interval (see
-- mobile_signal.state.sql for the set-based form: sequences, folds as cumulative averages, LAGs).
-- One difference makes this a stretch at a time: an interval is not folded into the usual count
-- while its venue is under a crowd warning of crowd_counts.crowd_venue, and that comes from the
-- lifecycle. Here every fold assumes the warnings open now (active_warnings) stay as they are; the
-- engine applies the rule's signals in order and stops at the first interval after which a venue's
-- warning was raised or cleared: up to that interval every fold was decided right, so the rows are
-- exact. crowd_counts.commit.sql stores the state up to it (bulk_cut) and the engine runs this again
-- for the intervals after it. (A few dozen stretches for a week of venue counts.)
CREATE OR REPLACE TEMP TABLE bulk_cc_seq AS
WITH st AS (
  SELECT * FROM venue_count_state WHERE venue_id IN (SELECT venue_id FROM venue_count_in)
),
r AS (
  SELECT i.venue_id, i.window_start, i.people,
    CAST(NULL AS DOUBLE) AS a0, CAST(NULL AS DOUBLE) AS a1, CAST(NULL AS DOUBLE) AS a2, CAST(NULL AS DOUBLE) AS a3,
    CAST(NULL AS DOUBLE) AS p1, CAST(NULL AS DOUBLE) AS p2, CAST(NULL AS DOUBLE) AS p3,
    row_number() OVER (PARTITION BY i.venue_id ORDER BY i.window_start) AS ord
  FROM venue_count_in i LEFT JOIN st ON st.venue_id = i.venue_id
  -- an interval older than the state's is late and ignored
  WHERE st.window_start IS NULL OR st.window_start <= i.window_start
  UNION ALL
  SELECT venue_id, window_start, people, a0, a1, a2, a3, p1, p2, p3, 0 FROM st
)
SELECT r.*, slot_of(r.window_start, p.slot_min, p.tz_offset_min) AS slot,
  lag(r.window_start) OVER w AS prev_ws, lead(r.window_start) OVER w AS next_ws,
  coalesce(lead(r.window_start) OVER w > r.window_start, false) AND a.subject_id IS NULL AS folded
FROM r CROSS JOIN params p
LEFT JOIN (SELECT subject_id FROM active_warnings WHERE rule = 'crowd_counts.crowd_venue' AND subject_type = 'venue') a
  ON a.subject_id = r.venue_id
WINDOW w AS (PARTITION BY r.venue_id ORDER BY r.ord);

CREATE OR REPLACE TEMP TABLE bulk_cc_fold AS
SELECT venue_id, slot, ord, people, next_ws, count(*) OVER w AS cn, sum(people) OVER w AS cs
FROM bulk_cc_seq WHERE folded
WINDOW w AS (PARTITION BY venue_id, slot ORDER BY ord ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW);
CREATE OR REPLACE TEMP TABLE bulk_cc_base0 AS
SELECT * FROM venue_count_baseline WHERE venue_id IN (SELECT venue_id FROM bulk_cc_seq)
  AND slot IN (SELECT slot FROM bulk_cc_seq
               UNION SELECT slot_of(w.window_start + to_minutes(CAST(hz.horizon_min AS BIGINT)), p.slot_min, p.tz_offset_min)
               FROM (SELECT DISTINCT window_start FROM bulk_cc_seq) w CROSS JOIN horizons hz CROSS JOIN params p);
CREATE OR REPLACE TEMP TABLE bulk_cc_base AS
WITH v AS (
  SELECT venue_id, slot, ord + 1 AS from_ord, cn, cs FROM bulk_cc_fold
  UNION ALL
  SELECT venue_id, slot, 0, 0, 0 FROM bulk_cc_base0
)
SELECT v.venue_id, v.slot, v.from_ord,
  coalesce(lead(v.from_ord) OVER (PARTITION BY v.venue_id, v.slot ORDER BY v.from_ord), 9223372036854775807) AS to_ord,
  coalesce(b0.n, 0) + v.cn AS n, (coalesce(b0.n * b0.mean, 0) + v.cs) / (coalesce(b0.n, 0) + v.cn) AS mean
FROM v LEFT JOIN bulk_cc_base0 b0 ON b0.venue_id = v.venue_id AND b0.slot = v.slot;

CREATE OR REPLACE TEMP TABLE bulk_cc_rows AS
WITH b AS (
  SELECT s.venue_id, s.ord, s.window_start, s.people, s.slot, s.prev_ws,
    s.a0 AS s_a0, s.a1 AS s_a1, s.a2 AS s_a2, s.a3 AS s_a3, s.p1 AS s_p1, s.p2 AS s_p2, s.p3 AS s_p3,
    bv.n, bv.mean
  FROM bulk_cc_seq s
  LEFT JOIN bulk_cc_base bv ON bv.venue_id = s.venue_id AND bv.slot = s.slot AND s.ord >= bv.from_ord AND s.ord < bv.to_ord
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
  SELECT d.*,
    CASE WHEN ord = 0 THEN s_a1 WHEN corr THEN lag(s_a1) OVER w WHEN ok THEN lag(a0) OVER w END AS a1,
    CASE WHEN ord = 0 THEN s_p1 WHEN corr THEN lag(s_p1) OVER w WHEN ok THEN lag(people) OVER w END AS p1
  FROM d WINDOW w AS (PARTITION BY venue_id ORDER BY ord)
),
l2 AS (
  SELECT l1.*,
    CASE WHEN ord = 0 THEN s_a2 WHEN corr THEN lag(s_a2) OVER w WHEN ok THEN lag(a1) OVER w END AS a2,
    CASE WHEN ord = 0 THEN s_p2 WHEN corr THEN lag(s_p2) OVER w WHEN ok THEN lag(p1) OVER w END AS p2
  FROM l1 WINDOW w AS (PARTITION BY venue_id ORDER BY ord)
),
l3 AS (
  SELECT l2.*,
    CASE WHEN ord = 0 THEN s_a3 WHEN corr THEN lag(s_a3) OVER w WHEN ok THEN lag(a2) OVER w END AS a3,
    CASE WHEN ord = 0 THEN s_p3 WHEN corr THEN lag(s_p3) OVER w WHEN ok THEN lag(p2) OVER w END AS p3
  FROM l2 WINDOW w AS (PARTITION BY venue_id ORDER BY ord)
)
SELECT venue_id, ord, window_start, people, base, a0, a1, a2, a3, p1, p2, p3 FROM l3 WHERE ord > 0;
