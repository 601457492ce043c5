{{ config(materialized='table') }}
-- 一图：街道风险汇总 / Per street: units by level, scores, overdue major hazards (the map).
select r.street_code, s.name_zh, s.name_en, s.center_longitude, s.center_latitude,
       count(*) as units,
       count(*) filter (where r.level = 'red') as red_units,
       count(*) filter (where r.level = 'orange') as orange_units,
       count(*) filter (where r.level = 'yellow') as yellow_units,
       count(*) filter (where r.level = 'blue') as blue_units,
       round(avg(r.score), 2) as avg_score,
       max(r.score) as max_score,
       sum(r.overdue_major_hazards) as overdue_major_hazards,
       sum(r.open_hazards) as open_hazards,
       max(r.level_rank) as max_level_rank,
       case max(r.level_rank) when 4 then 'red' when 3 then 'orange' when 2 then 'yellow' else 'blue' end as max_level,
       any_value(r.as_of_date) as as_of_date
from {{ ref('enterprise_risk') }} as r
left join {{ ref('stg_streets') }} as s on s.street_code = r.street_code
group by r.street_code, s.name_zh, s.name_en, s.center_longitude, s.center_latitude
