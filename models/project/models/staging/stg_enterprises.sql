{{ config(materialized='view') }}
-- The newest record of each enterprise (reference data is re-sent on change).
select id, name, industry, address, street_code, community_code, longitude, latitude,
       employees, has_liability_insurance, grid_inspector_id, updated_at
from (
    select *, row_number() over (partition by id order by updated_at desc) as rn
    from {{ source('raw', 'enterprises') }}
) as e
where rn = 1
