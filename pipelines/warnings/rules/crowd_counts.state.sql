-- 场所客流计数：更新场所状态 / Venue counts: fold the staged interval into the venue-count state.
-- in_crowd_counts holds one interval (one observed_at) of counting sites. A site whose site_id is a
-- venue_id is that venue's own count (a mobile-signalling electronic fence 电子围栏 or gate
-- counters); its direction 'total' row is the people in the venue. Other sites are not venues and
-- are ignored here.

-- 0. The venues' counts of this interval (one row per venue; a repeated row counts once).
DELETE FROM venue_count_in;
INSERT INTO venue_count_in
SELECT c.site_id, c.observed_at, CAST(max(c.people) AS BIGINT)
FROM in_crowd_counts c JOIN venues v ON v.venue_id = c.site_id
WHERE c.direction = 'total' AND c.people IS NOT NULL AND c.observed_at IS NOT NULL
GROUP BY c.site_id, c.observed_at;

-- 1. A venue's previous interval is final once a newer one arrives: fold it into the usual count
--    of its time-of-week slot (running mean) — unless the venue was under a crowd warning then, so
--    that the usual crowd does not learn the surges the rule warns of.
INSERT INTO venue_count_baseline
SELECT s.venue_id, slot_of(s.window_start, p.slot_min, p.tz_offset_min), 1, s.people
FROM venue_count_state s JOIN venue_count_in i USING (venue_id) CROSS JOIN params p
WHERE s.window_start < i.window_start
  AND NOT EXISTS (SELECT 1 FROM active_warnings a
                  WHERE a.rule = 'crowd_counts.crowd_venue' AND a.subject_type = 'venue' AND a.subject_id = s.venue_id)
ON CONFLICT (venue_id, slot) DO UPDATE
  SET mean = venue_count_baseline.mean + (EXCLUDED.mean - venue_count_baseline.mean) / (venue_count_baseline.n + 1),
      n = venue_count_baseline.n + 1;

-- 2. The venue's new state: count, usual count, deviation now and the three intervals before, the
--    counts of the three intervals before (lags
--    dropped across a gap of more than three intervals; a corrected interval keeps them; an interval
--    older than the state's is late and ignored).
INSERT OR REPLACE INTO venue_count_state
SELECT i.venue_id, i.window_start, i.people,
  CASE WHEN b.n >= p.min_n THEN b.mean END,
  CASE WHEN b.n >= p.min_n THEN i.people - b.mean ELSE 0 END,
  CASE WHEN s.window_start = i.window_start THEN s.a1
       WHEN s.window_start >= i.window_start - to_minutes(CAST(3 * p.interval_min AS BIGINT)) THEN s.a0 END,
  CASE WHEN s.window_start = i.window_start THEN s.a2
       WHEN s.window_start >= i.window_start - to_minutes(CAST(3 * p.interval_min AS BIGINT)) THEN s.a1 END,
  CASE WHEN s.window_start = i.window_start THEN s.a3
       WHEN s.window_start >= i.window_start - to_minutes(CAST(3 * p.interval_min AS BIGINT)) THEN s.a2 END,
  CASE WHEN s.window_start = i.window_start THEN s.p1
       WHEN s.window_start >= i.window_start - to_minutes(CAST(3 * p.interval_min AS BIGINT)) THEN s.people END,
  CASE WHEN s.window_start = i.window_start THEN s.p2
       WHEN s.window_start >= i.window_start - to_minutes(CAST(3 * p.interval_min AS BIGINT)) THEN s.p1 END,
  CASE WHEN s.window_start = i.window_start THEN s.p3
       WHEN s.window_start >= i.window_start - to_minutes(CAST(3 * p.interval_min AS BIGINT)) THEN s.p2 END
FROM venue_count_in i CROSS JOIN params p
LEFT JOIN venue_count_state s ON s.venue_id = i.venue_id
LEFT JOIN venue_count_baseline b ON b.venue_id = i.venue_id AND b.slot = slot_of(i.window_start, p.slot_min, p.tz_offset_min)
WHERE s.window_start IS NULL OR s.window_start <= i.window_start;

-- 3. Only venues updated now are evaluated by the rule (late intervals are dropped here too).
DELETE FROM venue_count_in WHERE NOT EXISTS
  (SELECT 1 FROM venue_count_state s WHERE s.venue_id = venue_count_in.venue_id AND s.window_start = venue_count_in.window_start);
