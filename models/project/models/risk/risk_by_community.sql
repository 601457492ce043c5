{{ config(materialized='table') }}
-- 社区风险汇总 / Per community: units by level and scores.
select r.community_code, any_value(c.street_code) as street_code, any_value(c.name_zh) as name_zh, any_value(c.name_en) as name_en,
       count(*) as units,
       count(*) filter (where r.level = 'red') as red_units,
       count(*) filter (where r.level = 'orange') as orange_units,
       count(*) filter (where r.level = 'yellow') as yellow_units,
       count(*) filter (where r.level = 'blue') as blue_units,
       round(avg(r.score), 2) as avg_score,
       sum(r.overdue_major_hazards) as overdue_major_hazards,
       any_value(r.as_of_date) as as_of_date
from {{ ref('enterprise_risk') }} as r
left join {{ ref('stg_communities') }} as c on c.community_code = r.community_code
group by r.community_code
