-- 手机信令：批量追赶后写回状态 / Mobile signal, catch-up in bulk: store the state after the last staged
-- interval (run after the rules and the lifecycle): the folded baseline rows, and each cell's and
-- venue's last row. (Delete + insert for the per-cell tables, as in ../mobile_signal.state.sql.)
DELETE FROM cell_baseline b USING (SELECT DISTINCT grid_cell_id, slot FROM bulk_cell_fold) f
WHERE b.grid_cell_id = f.grid_cell_id AND b.slot = f.slot;
INSERT INTO cell_baseline
SELECT f.grid_cell_id, f.slot, coalesce(b0.n, 0) + f.cn, (coalesce(b0.n * b0.mean, 0) + f.cs) / (coalesce(b0.n, 0) + f.cn)
FROM (SELECT grid_cell_id, slot, max(cn) AS cn, arg_max(cs, ord) AS cs FROM bulk_cell_fold GROUP BY ALL) f
LEFT JOIN bulk_cell_base0 b0 ON b0.grid_cell_id = f.grid_cell_id AND b0.slot = f.slot;

DELETE FROM cell_state WHERE grid_cell_id IN (SELECT grid_cell_id FROM bulk_cell_rows);
INSERT INTO cell_state
SELECT grid_cell_id, window_start, people, base, a0, a1, a2, a3 FROM bulk_cell_rows
QUALIFY ord = max(ord) OVER (PARTITION BY grid_cell_id);

INSERT OR REPLACE INTO venue_baseline
SELECT f.venue_id, f.slot, coalesce(b0.n, 0) + f.cn, (coalesce(b0.n * b0.mean, 0) + f.cs) / (coalesce(b0.n, 0) + f.cn)
FROM (SELECT venue_id, slot, max(cn) AS cn, arg_max(cs, ord) AS cs FROM bulk_venue_fold GROUP BY ALL) f
LEFT JOIN bulk_venue_base0 b0 ON b0.venue_id = f.venue_id AND b0.slot = f.slot;

INSERT OR REPLACE INTO venue_state
SELECT venue_id, window_start, people, cells, base, a0, a1, a2, a3 FROM bulk_venue_rows
QUALIFY ord = max(ord) OVER (PARTITION BY venue_id);
