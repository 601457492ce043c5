{{ config(materialized='view') }}
-- One row per hazard: the record that knows most (rectified before overdue before open).
select id, enterprise_id, found_at, level, description, deadline, rectified_at, status, risk_source_id
from (
    select *, row_number() over (
        partition by id
        order by (rectified_at is not null) desc,
                 case status when 'rectified' then 3 when 'overdue' then 2 else 1 end desc,
                 found_at desc
    ) as rn
    from {{ source('raw', 'hazards') }}
) as h
where rn = 1
