-- 场所客流计数：批量追赶 / Venue counts, catch-up in bulk: the venues' counts of every staged interval
-- (one row per venue and interval; a repeated row counts once), as step 0 of ../crowd_counts.state.sql.
-- crowd_counts.state.sql, the rule and crowd_counts.commit.sql then run over them in stretches (see there).
DELETE FROM venue_count_in;
INSERT INTO venue_count_in
SELECT c.site_id, c.observed_at, CAST(max(c.people) AS BIGINT)
FROM in_crowd_counts c JOIN venues v ON v.venue_id = c.site_id
WHERE c.direction = 'total' AND c.people IS NOT NULL AND c.observed_at IS NOT NULL
GROUP BY c.site_id, c.observed_at;
