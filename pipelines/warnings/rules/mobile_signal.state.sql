-- 手机信令：更新网格与场所状态 / Mobile signal: fold the staged interval into the grid-cell and venue state.
-- in_mobile_signal holds one interval (one window_start), one row per grid cell.

-- 1. The staged cells' new state, and what the fold of their previous interval needs.
--    A cell's previous interval is final once a newer one arrives: it is folded into the usual count
--    of its time-of-week slot (running mean: n intervals, mean people). The usual count of this
--    interval's slot, the fold included, gives the deviation now (a0); a1..a3 are the deviations of
--    the three intervals before (dropped across a gap of more than three intervals; a corrected
--    interval keeps them).
--    cell_next holds the staged cells' new rows (read by mobile_signal.crowd_grid_cell.sql) and,
--    after them, the previous interval (prev_window_start; NULL for a new cell) and its folded
--    baseline row (fold_slot, fold_n, fold_mean; fold_slot NULL when nothing is folded).
--    One statement reads cell_state and cell_baseline once for all of this (it used to take three
--    joins of the 262,144-row tables). cell_next is created anew, not emptied, so that the planner
--    sees its true size and hashes the smaller side of each join.
CREATE OR REPLACE TEMP TABLE cell_next AS
WITH j AS (
  SELECT i.grid_cell_id, i.window_start, i.people_count AS people,
    s.window_start AS prev_window_start, s.people AS prev_people, s.a0 AS prev_a0, s.a1 AS prev_a1, s.a2 AS prev_a2, s.a3 AS prev_a3,
    CASE WHEN s.window_start < i.window_start THEN slot_of(s.window_start, p.slot_min, p.tz_offset_min) END AS fold_slot,
    slot_of(i.window_start, p.slot_min, p.tz_offset_min) AS slot
  FROM in_mobile_signal i CROSS JOIN params p
  LEFT JOIN cell_state s ON s.grid_cell_id = i.grid_cell_id
),
-- the staged cells' baseline rows (a semi-join first: the joins below then hash these few rows,
-- not the whole baseline)
b0 AS (SELECT * FROM cell_baseline WHERE grid_cell_id IN (SELECT grid_cell_id FROM in_mobile_signal)),
f AS (
  SELECT j.*,
    coalesce(bf.n, 0) + 1 AS fold_n,
    coalesce(bf.mean + (j.prev_people - bf.mean) / (bf.n + 1), j.prev_people) AS fold_mean,
    bc.n AS cur_n, bc.mean AS cur_mean
  FROM j
  LEFT JOIN b0 bf ON bf.grid_cell_id = j.grid_cell_id AND bf.slot = j.fold_slot
  LEFT JOIN b0 bc ON bc.grid_cell_id = j.grid_cell_id AND bc.slot = j.slot
),
b AS (
  -- the usual count of this interval's slot, after the fold
  SELECT f.*, CASE WHEN fold_slot = slot THEN fold_n ELSE cur_n END AS n,
    CASE WHEN fold_slot = slot THEN fold_mean ELSE cur_mean END AS mean
  FROM f
)
SELECT b.grid_cell_id, b.window_start, b.people,
  CASE WHEN b.n >= p.min_n THEN b.mean END AS base,
  CASE WHEN b.n >= p.min_n THEN b.people - b.mean ELSE 0 END AS a0,
  CASE WHEN b.prev_window_start = b.window_start THEN b.prev_a1
       WHEN b.prev_window_start >= b.window_start - to_minutes(CAST(3 * p.interval_min AS BIGINT)) THEN b.prev_a0 END AS a1,
  CASE WHEN b.prev_window_start = b.window_start THEN b.prev_a2
       WHEN b.prev_window_start >= b.window_start - to_minutes(CAST(3 * p.interval_min AS BIGINT)) THEN b.prev_a1 END AS a2,
  CASE WHEN b.prev_window_start = b.window_start THEN b.prev_a3
       WHEN b.prev_window_start >= b.window_start - to_minutes(CAST(3 * p.interval_min AS BIGINT)) THEN b.prev_a2 END AS a3,
  b.prev_window_start, b.fold_slot, b.fold_n, b.fold_mean
FROM b CROSS JOIN params p;

-- 2. The fold: the slot's baseline row is replaced (or added on the cell's first fold of that slot).
--    (Delete + insert, not UPDATE or MERGE INTO: with DuckDB 1.5 an UPDATE of rows that earlier,
--    not yet checkpointed batches had updated took seconds at 262,144 cells, and a MERGE was over
--    20× slower than these statements.)
DELETE FROM cell_baseline b USING cell_next c
WHERE c.fold_n > 1 AND b.grid_cell_id = c.grid_cell_id AND b.slot = c.fold_slot;
INSERT INTO cell_baseline
SELECT grid_cell_id, fold_slot, fold_n, fold_mean FROM cell_next WHERE fold_slot IS NOT NULL;

-- 3. The new state rows replace the staged cells' rows (delete + insert, as for the baseline).
DELETE FROM cell_state WHERE grid_cell_id IN (SELECT grid_cell_id FROM cell_next WHERE prev_window_start IS NOT NULL);
INSERT INTO cell_state
SELECT grid_cell_id, window_start, people, base, a0, a1, a2, a3 FROM cell_next;

-- 4. Venues touched by this interval: the venue's count is the sum over its cells that reported it.
DELETE FROM touched_venues;
INSERT INTO touched_venues
SELECT DISTINCT vc.venue_id, i.window_start FROM in_mobile_signal i JOIN venue_cells vc USING (grid_cell_id);

INSERT INTO venue_baseline
SELECT s.venue_id, slot_of(s.window_start, p.slot_min, p.tz_offset_min), 1, s.people
FROM venue_state s JOIN touched_venues t USING (venue_id) CROSS JOIN params p
WHERE s.window_start < t.window_start
ON CONFLICT (venue_id, slot) DO UPDATE
  SET mean = venue_baseline.mean + (EXCLUDED.mean - venue_baseline.mean) / (venue_baseline.n + 1), n = venue_baseline.n + 1;

INSERT OR REPLACE INTO venue_state
WITH now AS (
  SELECT t.venue_id, t.window_start, CAST(round(sum(c.people * coalesce(vc.share, 1.0))) AS BIGINT) AS people, count(*) AS cells
  FROM touched_venues t JOIN venue_cells vc USING (venue_id)
  JOIN cell_state c ON c.grid_cell_id = vc.grid_cell_id AND c.window_start = t.window_start
  GROUP BY ALL)
SELECT n.venue_id, n.window_start, n.people, n.cells,
  CASE WHEN b.n >= p.min_n THEN b.mean END,
  CASE WHEN b.n >= p.min_n THEN n.people - b.mean ELSE 0 END,
  CASE WHEN s.window_start = n.window_start THEN s.a1
       WHEN s.window_start >= n.window_start - to_minutes(CAST(3 * p.interval_min AS BIGINT)) THEN s.a0 END,
  CASE WHEN s.window_start = n.window_start THEN s.a2
       WHEN s.window_start >= n.window_start - to_minutes(CAST(3 * p.interval_min AS BIGINT)) THEN s.a1 END,
  CASE WHEN s.window_start = n.window_start THEN s.a3
       WHEN s.window_start >= n.window_start - to_minutes(CAST(3 * p.interval_min AS BIGINT)) THEN s.a2 END
FROM now n CROSS JOIN params p
LEFT JOIN venue_state s ON s.venue_id = n.venue_id
LEFT JOIN venue_baseline b ON b.venue_id = n.venue_id AND b.slot = slot_of(n.window_start, p.slot_min, p.tz_offset_min);
