-- The final level is never below the inherent level while floor_at_inherent = 1,
-- and every score is within 0–100.
select enterprise_id, level_rank, inherent_rank, score
from {{ ref('enterprise_risk') }}
where ({{ var('floor_at_inherent') }} = 1 and level_rank < inherent_rank)
   or score < 0 or score > 100
