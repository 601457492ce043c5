{{ config(materialized='view') }}
select community_code, street_code, name_zh, name_en, population, center_longitude, center_latitude
from (
    select *, row_number() over (partition by community_code order by updated_at desc) as rn
    from {{ source('raw', 'communities') }}
) as c
where rn = 1
