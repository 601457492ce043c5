{{ config(materialized='table') }}
-- 安全生产画像（当前） / The current portrait: one row per enterprise, as of as_of_date.
select *
from {{ ref('enterprise_risk_daily') }}
where as_of_date = coalesce(try_cast('{{ var("as_of_date") }}' as date), current_date)
