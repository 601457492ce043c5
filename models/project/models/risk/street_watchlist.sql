{{ config(materialized='table') }}
-- 一单：街道红橙单位清单 / The street chief's list: red and orange units, worst first.
select r.street_code, s.name_zh as street_name_zh, r.enterprise_id, r.enterprise_name, r.community_code,
       r.industry, r.level, r.level_zh, r.score, r.inherent_level, r.overdue_major_hazards, r.open_hazards,
       r.top_factors_zh, r.top_factors_en, r.longitude, r.latitude, r.as_of_date,
       row_number() over (partition by r.street_code order by r.level_rank desc, r.score desc, r.enterprise_id) as rank_in_street
from {{ ref('enterprise_risk') }} as r
left join {{ ref('stg_streets') }} as s on s.street_code = r.street_code
where r.level in ('red', 'orange')
