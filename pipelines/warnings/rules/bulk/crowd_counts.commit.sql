-- 场所客流计数：批量追赶后写回状态 / Venue counts, catch-up in bulk: store the state as it is after the
-- interval bulk_cut (see crowd_counts.state.sql): the folds made up to then (a row is folded when its
-- venue's next interval arrives) and each venue's last row up to then; the intervals up to then are done.
INSERT OR REPLACE INTO venue_count_baseline
SELECT f.venue_id, f.slot, coalesce(b0.n, 0) + count(*), (coalesce(b0.n * b0.mean, 0) + sum(f.people)) / (coalesce(b0.n, 0) + count(*))
FROM bulk_cc_fold f LEFT JOIN bulk_cc_base0 b0 ON b0.venue_id = f.venue_id AND b0.slot = f.slot
WHERE f.next_ws <= (SELECT cut FROM bulk_cut)
GROUP BY f.venue_id, f.slot, b0.n, b0.mean;

INSERT OR REPLACE INTO venue_count_state
SELECT venue_id, window_start, people, base, a0, a1, a2, a3, p1, p2, p3 FROM bulk_cc_rows
WHERE window_start <= (SELECT cut FROM bulk_cut)
QUALIFY ord = max(ord) OVER (PARTITION BY venue_id);

DELETE FROM venue_count_in WHERE window_start <= (SELECT cut FROM bulk_cut);
