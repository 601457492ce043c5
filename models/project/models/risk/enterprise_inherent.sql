{{ config(materialized='view') }}
-- Inherent level of each enterprise: the highest level of its risk sources (就高);
-- an enterprise without assessed sources is blue.
select e.id as enterprise_id,
       count(r.risk_source_id) as risk_sources,
       max(r.lec_d) as max_lec_d,
       coalesce(max(r.level_rank), 1) as inherent_rank,
       count(*) filter (where r.level = 'red') as red_sources,
       count(*) filter (where r.level = 'orange') as orange_sources
from {{ ref('stg_enterprises') }} as e
left join {{ ref('risk_source_levels') }} as r on r.enterprise_id = e.id
group by e.id
