{{ config(materialized='table') }}
-- 一表：行业风险汇总 / Per industry: units by level and scores (the table).
select coalesce(industry, '未知 unknown') as industry,
       count(*) as units,
       count(*) filter (where level = 'red') as red_units,
       count(*) filter (where level = 'orange') as orange_units,
       count(*) filter (where level = 'yellow') as yellow_units,
       count(*) filter (where level = 'blue') as blue_units,
       round(avg(score), 2) as avg_score,
       sum(overdue_major_hazards) as overdue_major_hazards,
       any_value(as_of_date) as as_of_date
from {{ ref('enterprise_risk') }}
group by coalesce(industry, '未知 unknown')
