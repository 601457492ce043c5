{{ config(materialized='view') }}
select adcode as street_code, name_zh, name_en, population, center_longitude, center_latitude
from (
    select *, row_number() over (partition by adcode order by updated_at desc) as rn
    from {{ source('raw', 'streets') }}
) as s
where rn = 1
