{{ config(materialized='table') }}
-- LEC per risk source: D = L × E × C and its level.
with rs as (
    select *
    from (
        select *, row_number() over (partition by id order by updated_at desc) as rn
        from {{ source('raw', 'risk_sources') }}
    ) as r
    where rn = 1
), d as (
    select id as risk_source_id, enterprise_id, name, kind, lec_l, lec_e, lec_c,
           round(lec_l * lec_e * lec_c, 4) as lec_d
    from rs
)
select *,
       case when lec_d > {{ var('lec_red_above') }} then 'red'
            when lec_d > {{ var('lec_orange_above') }} then 'orange'
            when lec_d > {{ var('lec_yellow_above') }} then 'yellow'
            else 'blue' end as level,
       case when lec_d > {{ var('lec_red_above') }} then 4
            when lec_d > {{ var('lec_orange_above') }} then 3
            when lec_d > {{ var('lec_yellow_above') }} then 2
            else 1 end as level_rank,
       case when lec_d > {{ var('lec_red_above') }} then '重大'
            when lec_d > {{ var('lec_orange_above') }} then '较大'
            when lec_d > {{ var('lec_yellow_above') }} then '一般'
            else '低' end as level_zh
from d
