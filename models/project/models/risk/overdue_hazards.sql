{{ config(materialized='table') }}
-- 逾期隐患清单 / Hazards past their deadline and not rectified, as of as_of_date.
with p as (
    select coalesce(try_cast('{{ var("as_of_date") }}' as date), current_date) as as_of_date
)
select h.id as hazard_id, h.enterprise_id, e.name as enterprise_name, e.street_code, e.community_code,
       h.level, case h.level when 'major' then '重大隐患' else '一般隐患' end as level_zh,
       h.description, h.found_at, h.deadline,
       date_diff('day', h.deadline, p.as_of_date) as days_overdue,
       p.as_of_date
from {{ ref('stg_hazards') }} as h
cross join p
left join {{ ref('stg_enterprises') }} as e on e.id = h.enterprise_id
where h.deadline < p.as_of_date
  and epoch_us(h.found_at) < (date_diff('day', date '1970-01-01', p.as_of_date) + 1) * 86400000000 - 28800000000
  and (h.rectified_at is null
       or epoch_us(h.rectified_at) >= (date_diff('day', date '1970-01-01', p.as_of_date) + 1) * 86400000000 - 28800000000)
  and not (h.status = 'rectified' and h.rectified_at is null)
