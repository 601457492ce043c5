-- 手机信令：更新网格与场所状态 / Mobile signal: fold the staged interval into the grid-cell and venue state.
-- in_mobile_signal holds one interval (one window_start), one row per grid cell.

-- 1. A cell's previous interval is final once a newer one arrives: fold it into the usual
--    count of its time-of-week slot (running mean).
DELETE FROM cell_fold;
INSERT INTO cell_fold
SELECT s.grid_cell_id, slot_of(s.window_start, p.slot_min, p.tz_offset_min), s.people
FROM cell_state s JOIN in_mobile_signal i USING (grid_cell_id) CROSS JOIN params p
WHERE s.window_start < i.window_start;
-- The changed baseline rows are computed, deleted and inserted again (hash joins), not UPDATEd: in
-- profiles an UPDATE of rows an earlier, not yet checkpointed batch had updated took seconds.
DELETE FROM cell_baseline_next;
INSERT INTO cell_baseline_next
SELECT f.grid_cell_id, f.slot, coalesce(b.n, 0) + 1, coalesce(b.mean + (f.people - b.mean) / (b.n + 1), f.people)
FROM cell_fold f LEFT JOIN cell_baseline b ON b.grid_cell_id = f.grid_cell_id AND b.slot = f.slot;
DELETE FROM cell_baseline b USING cell_fold f WHERE b.grid_cell_id = f.grid_cell_id AND b.slot = f.slot;
INSERT INTO cell_baseline SELECT * FROM cell_baseline_next;

-- 2. The cell's new state: count, usual count, deviation now and the three intervals before
--    (lags are dropped across a gap of more than three intervals; a corrected interval keeps them).
--    cell_next keeps the staged cells' new rows for the grid-cell rule (mobile_signal.crowd_grid_cell.sql).
--    (Delete + insert, not MERGE INTO: with DuckDB 1.5 a MERGE of the staged cells into cell_state
--    was over 20× slower than these two statements, measured at 65,536 cells.)
DELETE FROM cell_next;
INSERT INTO cell_next
SELECT i.grid_cell_id, i.window_start, i.people_count,
  CASE WHEN b.n >= p.min_n THEN b.mean END AS base,
  CASE WHEN b.n >= p.min_n THEN i.people_count - b.mean ELSE 0 END AS a0,
  CASE WHEN s.window_start = i.window_start THEN s.a1
       WHEN s.window_start >= i.window_start - to_minutes(CAST(3 * p.interval_min AS BIGINT)) THEN s.a0 END AS a1,
  CASE WHEN s.window_start = i.window_start THEN s.a2
       WHEN s.window_start >= i.window_start - to_minutes(CAST(3 * p.interval_min AS BIGINT)) THEN s.a1 END AS a2,
  CASE WHEN s.window_start = i.window_start THEN s.a3
       WHEN s.window_start >= i.window_start - to_minutes(CAST(3 * p.interval_min AS BIGINT)) THEN s.a2 END AS a3
FROM in_mobile_signal i CROSS JOIN params p
LEFT JOIN cell_state s ON s.grid_cell_id = i.grid_cell_id
LEFT JOIN cell_baseline b ON b.grid_cell_id = i.grid_cell_id AND b.slot = slot_of(i.window_start, p.slot_min, p.tz_offset_min);
DELETE FROM cell_state WHERE grid_cell_id IN (SELECT grid_cell_id FROM in_mobile_signal);
INSERT INTO cell_state SELECT * FROM cell_next;

-- 3. Venues touched by this interval: the venue's count is the sum over its cells that reported it.
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
