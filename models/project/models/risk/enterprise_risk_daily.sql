{{ config(materialized='incremental', unique_key='as_of_date', partition_by='as_of_date', incremental_strategy='delete+insert') }}
-- 安全生产风险画像（按日） / Enterprise risk portraits, one row per enterprise and day.
-- A day's portrait uses what was known at the end of that day (Beijing time):
-- hazards found and not rectified by then, events in the windows before it.
-- Times are compared as epoch microseconds so the result does not depend on
-- the session time zone.
with params as (
    select coalesce(try_cast('{{ var("as_of_date") }}' as date), current_date) as as_of_date
), bounds as (
    select as_of_date as end_date,
{% if is_incremental() %}
           greatest(as_of_date - {{ var('max_catchup_days') }},
                    least(as_of_date - {{ var('lookback_days') }},
                          coalesce((select max(as_of_date) from {{ this }}) + 1, as_of_date))) as default_start
{% else %}
           as_of_date as default_start
{% endif %}
    from params
), days as (
    select cast(d as date) as as_of_date,
           (date_diff('day', date '1970-01-01', cast(d as date)) + 1) * 86400000000 - 28800000000 as cutoff_us
    from (
        select unnest(generate_series(
            cast(least(coalesce(try_cast('{{ var("start_date") }}' as date), default_start), end_date) as timestamp),
            cast(end_date as timestamp), interval 1 day)) as d
        from bounds
    ) as s
), ent as (
    select e.id as enterprise_id, e.name as enterprise_name, e.street_code, e.community_code, e.industry,
           e.longitude, e.latitude, e.has_liability_insurance,
           i.risk_sources, i.max_lec_d, i.inherent_rank,
           cast(floor(e.longitude / {{ var('cell_lon_deg') }}) as bigint) as cx,
           cast(floor(e.latitude / {{ var('cell_lat_deg') }}) as bigint) as cy
    from {{ ref('stg_enterprises') }} as e
    join {{ ref('enterprise_inherent') }} as i on i.enterprise_id = e.id
), hz as (
    select d.as_of_date, h.enterprise_id,
           count(*) filter (where h.level = 'major' and (h.deadline < d.as_of_date or (h.deadline is null and h.status = 'overdue'))) as overdue_major,
           count(*) filter (where not (h.level = 'major' and (h.deadline < d.as_of_date or (h.deadline is null and h.status = 'overdue')))) as open_other
    from days as d
    join {{ ref('stg_hazards') }} as h
      on epoch_us(h.found_at) < d.cutoff_us
     and (h.rectified_at is null or epoch_us(h.rectified_at) >= d.cutoff_us)
     and not (h.status = 'rectified' and h.rectified_at is null)
    group by all
), insp as (
    select d.as_of_date, i.enterprise_id, count(*) as failed
    from days as d
    join (select enterprise_id, inspected_at from {{ source('raw', 'inspections') }}
          where result = 'fail' and inspected_at >= cast(least(coalesce(try_cast('{{ var("start_date") }}' as date), coalesce(try_cast('{{ var("as_of_date") }}' as date), current_date)), coalesce(try_cast('{{ var("as_of_date") }}' as date), current_date) - {{ var('max_catchup_days') }}) - ({{ var('inspection_window_days') }} + 1) as timestamptz) and inspected_at < cast(coalesce(try_cast('{{ var("as_of_date") }}' as date), current_date) + 2 as timestamptz)) as i
      on true
     and epoch_us(i.inspected_at) < d.cutoff_us
     and epoch_us(i.inspected_at) >= d.cutoff_us - {{ var('inspection_window_days') }} * 86400000000
    group by all
), ev as (
    -- The constant bounds only let DuckDB skip row groups; the windows are exact below.
    select 'call' as kind, longitude, latitude, epoch_us(received_at) as t from {{ source('raw', 'incidents') }}
    where received_at >= cast(least(coalesce(try_cast('{{ var("start_date") }}' as date), coalesce(try_cast('{{ var("as_of_date") }}' as date), current_date)), coalesce(try_cast('{{ var("as_of_date") }}' as date), current_date) - {{ var('max_catchup_days') }}) - ({{ var('nearby_window_days') }} + 1) as timestamptz) and received_at < cast(coalesce(try_cast('{{ var("as_of_date") }}' as date), current_date) + 2 as timestamptz)
    union all
    select 'police', longitude, latitude, epoch_us(occurred_at) from {{ source('raw', 'police_cases') }}
    where occurred_at >= cast(least(coalesce(try_cast('{{ var("start_date") }}' as date), coalesce(try_cast('{{ var("as_of_date") }}' as date), current_date)), coalesce(try_cast('{{ var("as_of_date") }}' as date), current_date) - {{ var('max_catchup_days') }}) - ({{ var('nearby_window_days') }} + 1) as timestamptz) and occurred_at < cast(coalesce(try_cast('{{ var("as_of_date") }}' as date), current_date) + 2 as timestamptz)
    union all
    select 'complaint', longitude, latitude, epoch_us(requested_at) from {{ source('raw', 'city_events') }}
    where requested_at >= cast(least(coalesce(try_cast('{{ var("start_date") }}' as date), coalesce(try_cast('{{ var("as_of_date") }}' as date), current_date)), coalesce(try_cast('{{ var("as_of_date") }}' as date), current_date) - {{ var('max_catchup_days') }}) - ({{ var('nearby_window_days') }} + 1) as timestamptz) and requested_at < cast(coalesce(try_cast('{{ var("as_of_date") }}' as date), current_date) + 2 as timestamptz)
), ev_cells as (
    select d.as_of_date, ev.kind,
           cast(floor(ev.longitude / {{ var('cell_lon_deg') }}) as bigint) as cx,
           cast(floor(ev.latitude / {{ var('cell_lat_deg') }}) as bigint) as cy,
           count(*) as n
    from days as d
    join ev on ev.t < d.cutoff_us and ev.t >= d.cutoff_us - {{ var('nearby_window_days') }} * 86400000000
    where ev.longitude is not null and ev.latitude is not null
    group by all
), near_cells as (
    -- Per grid square: the events in it and in the eight around it (so each
    -- unit looks up one square instead of joining nine).
    select c.as_of_date, c.cx + a.dx as cx, c.cy + b.dy as cy,
           sum(c.n) filter (where c.kind = 'call') as calls,
           sum(c.n) filter (where c.kind = 'police') as police,
           sum(c.n) filter (where c.kind = 'complaint') as complaints
    from ev_cells as c, (values (-1), (0), (1)) as a(dx), (values (-1), (0), (1)) as b(dy)
    group by all
), near as (
    select nc.as_of_date, e.enterprise_id,
           coalesce(nc.calls, 0) as calls, coalesce(nc.police, 0) as police, coalesce(nc.complaints, 0) as complaints
    from ent as e
    join near_cells as nc on nc.cx = e.cx and nc.cy = e.cy
), cells as (
    select grid_cell_id, community_code
    from (
        select *, row_number() over (partition by grid_cell_id order by updated_at desc) as rn
        from {{ source('raw', 'grid_cells') }}
    ) as g
    where rn = 1
), crowd as (
    select d.as_of_date, c.community_code, max(m.people_count) as peak
    from days as d
    join (select grid_cell_id, window_start, people_count from {{ source('raw', 'mobile_signal') }}
          where window_start >= cast(least(coalesce(try_cast('{{ var("start_date") }}' as date), coalesce(try_cast('{{ var("as_of_date") }}' as date), current_date)), coalesce(try_cast('{{ var("as_of_date") }}' as date), current_date) - {{ var('max_catchup_days') }}) - ({{ var('crowd_window_days') }} + 1) as timestamptz) and window_start < cast(coalesce(try_cast('{{ var("as_of_date") }}' as date), current_date) + 2 as timestamptz)) as m
      on epoch_us(m.window_start) < d.cutoff_us
     and epoch_us(m.window_start) >= d.cutoff_us - {{ var('crowd_window_days') }} * 86400000000
    join cells as c on c.grid_cell_id = m.grid_cell_id
    group by all
), wx as (
    select d.as_of_date, max(w.rain_mm) as max_rain_mm, max(w.temperature_c) as max_temperature_c
    from days as d
    join (select observed_at, rain_mm, temperature_c from {{ source('raw', 'weather') }}
          where observed_at >= cast(least(coalesce(try_cast('{{ var("start_date") }}' as date), coalesce(try_cast('{{ var("as_of_date") }}' as date), current_date)), coalesce(try_cast('{{ var("as_of_date") }}' as date), current_date) - {{ var('max_catchup_days') }}) - (2 + 1) as timestamptz) and observed_at < cast(coalesce(try_cast('{{ var("as_of_date") }}' as date), current_date) + 2 as timestamptz)) as w
      on epoch_us(w.observed_at) < d.cutoff_us
     and epoch_us(w.observed_at) >= d.cutoff_us - {{ var('weather_window_hours') }} * 3600000000
    group by all
), facts as (
    select d.as_of_date, e.*,
           coalesce(hz.overdue_major, 0) as overdue_major_hazards,
           coalesce(hz.open_other, 0) as open_hazards,
           coalesce(insp.failed, 0) as failed_inspections,
           coalesce(near.calls, 0) as emergency_calls_nearby,
           coalesce(near.police, 0) as police_cases_nearby,
           coalesce(near.complaints, 0) as complaints_nearby,
           coalesce(crowd.peak, 0) as crowd_peak_people,
           wx.max_rain_mm, wx.max_temperature_c
    from days as d
    cross join ent as e
    left join hz on hz.as_of_date = d.as_of_date and hz.enterprise_id = e.enterprise_id
    left join insp on insp.as_of_date = d.as_of_date and insp.enterprise_id = e.enterprise_id
    left join near on near.as_of_date = d.as_of_date and near.enterprise_id = e.enterprise_id
    left join crowd on crowd.as_of_date = d.as_of_date and crowd.community_code = e.community_code
    left join wx on wx.as_of_date = d.as_of_date
), points as (
    select *,
           case inherent_rank when 4 then {{ var('base_red') }} when 3 then {{ var('base_orange') }}
                              when 2 then {{ var('base_yellow') }} else {{ var('base_blue') }} end as p_inherent,
           least({{ var('cap_overdue_major') }}, {{ var('w_overdue_major') }} * overdue_major_hazards) as p_overdue_major,
           least({{ var('cap_open_hazard') }}, {{ var('w_open_hazard') }} * open_hazards) as p_open_hazards,
           least({{ var('cap_failed_inspection') }}, {{ var('w_failed_inspection') }} * failed_inspections) as p_failed_inspections,
           least({{ var('cap_emergency_calls') }}, {{ var('w_emergency_calls') }} * (emergency_calls_nearby // {{ var('t_emergency_calls') }})) as p_emergency_calls,
           least({{ var('cap_police_cases') }}, {{ var('w_police_cases') }} * (police_cases_nearby // {{ var('t_police_cases') }})) as p_police_cases,
           least({{ var('cap_complaints') }}, {{ var('w_complaints') }} * (complaints_nearby // {{ var('t_complaints') }})) as p_complaints,
           case when coalesce(has_liability_insurance, false) then 0 else {{ var('w_no_insurance') }} end as p_no_insurance,
           case when crowd_peak_people >= {{ var('crowd_peak_people') }} then {{ var('w_crowd') }} else 0 end as p_crowd,
           case when coalesce(max_rain_mm, 0) >= {{ var('rain_mm_hour') }} or coalesce(max_temperature_c, -100) >= {{ var('heat_c') }}
                then {{ var('w_weather') }} else 0 end as p_weather
    from facts
), scored as (
    select *,
           cast(least(100, p_inherent + p_overdue_major + p_open_hazards + p_failed_inspections + p_emergency_calls
                      + p_police_cases + p_complaints + p_no_insurance + p_crowd + p_weather) as integer) as score
    from points
), levelled as (
    select *,
           case when score >= {{ var('score_red') }} then 4 when score >= {{ var('score_orange') }} then 3
                when score >= {{ var('score_yellow') }} then 2 else 1 end as score_rank
    from scored
), final as (
    select *,
           case when {{ var('floor_at_inherent') }} = 1 then greatest(score_rank, inherent_rank) else score_rank end as level_rank
    from levelled
), top as (
    -- The three factors with the most points (ties: the higher k first), in
    -- words with their points. Per row: a list of (points, k) pairs of the
    -- factors that have points, sorted, the first three spelt out below. No
    -- sort or aggregation across rows.
    select as_of_date, enterprise_id,
           array_to_string(list_transform(f, lambda x:
                   case x.k
                   when 10 then '固有风险' || case inherent_rank when 4 then '重大' when 3 then '较大' when 2 then '一般' else '低' end || coalesce('（D=' || cast(max_lec_d as varchar) || '）', '')
                   when 9 then '逾期未整改重大隐患 ' || overdue_major_hazards || ' 项'
                   when 8 then '未整改隐患 ' || open_hazards || ' 项'
                   when 7 then '检查不合格 ' || failed_inspections || ' 次'
                   when 6 then '周边警情 ' || emergency_calls_nearby || ' 起'
                   when 5 then '周边治安案件 ' || police_cases_nearby || ' 起'
                   when 4 then '周边12345诉求 ' || complaints_nearby || ' 件'
                   when 3 then '未投保安全生产责任险'
                   when 2 then '周边人员密集（峰值 ' || crowd_peak_people || ' 人）'
                   when 1 then '不利天气' end || ' +' || x.p), '；') as top_factors_zh,
           array_to_string(list_transform(f, lambda x:
                   case x.k
                   when 10 then 'inherent ' || case inherent_rank when 4 then 'major' when 3 then 'high' when 2 then 'general' else 'low' end || coalesce(' (D=' || cast(max_lec_d as varchar) || ')', '')
                   when 9 then overdue_major_hazards || ' overdue major hazard(s)'
                   when 8 then open_hazards || ' open hazard(s)'
                   when 7 then failed_inspections || ' failed inspection(s)'
                   when 6 then emergency_calls_nearby || ' emergency call(s) nearby'
                   when 5 then police_cases_nearby || ' police case(s) nearby'
                   when 4 then complaints_nearby || ' 12345 complaint(s) nearby'
                   when 3 then 'no safety liability insurance'
                   when 2 then 'crowded area (peak ' || crowd_peak_people || ' people)'
                   when 1 then 'adverse weather' end || ' +' || x.p), '; ') as top_factors_en
    from (
        select *,
               list_slice(list_sort(list_filter([
                   {'p': p_inherent, 'k': 10}, {'p': p_overdue_major, 'k': 9}, {'p': p_open_hazards, 'k': 8},
                   {'p': p_failed_inspections, 'k': 7}, {'p': p_emergency_calls, 'k': 6}, {'p': p_police_cases, 'k': 5},
                   {'p': p_complaints, 'k': 4}, {'p': p_no_insurance, 'k': 3}, {'p': p_crowd, 'k': 2}, {'p': p_weather, 'k': 1}
               ], lambda x: x.p > 0), 'DESC'), 1, 3) as f
        from final
    ) as s
)
select as_of_date, enterprise_id, enterprise_name, street_code, community_code, industry, longitude, latitude,
       risk_sources, max_lec_d,
       case inherent_rank when 4 then 'red' when 3 then 'orange' when 2 then 'yellow' else 'blue' end as inherent_level,
       inherent_rank,
       overdue_major_hazards, open_hazards, failed_inspections, emergency_calls_nearby, police_cases_nearby,
       complaints_nearby, has_liability_insurance, crowd_peak_people, max_rain_mm, max_temperature_c,
       cast(p_inherent as integer) as p_inherent, cast(p_overdue_major as integer) as p_overdue_major,
       cast(p_open_hazards as integer) as p_open_hazards, cast(p_failed_inspections as integer) as p_failed_inspections,
       cast(p_emergency_calls as integer) as p_emergency_calls, cast(p_police_cases as integer) as p_police_cases,
       cast(p_complaints as integer) as p_complaints, cast(p_no_insurance as integer) as p_no_insurance,
       cast(p_crowd as integer) as p_crowd, cast(p_weather as integer) as p_weather,
       score,
       case score_rank when 4 then 'red' when 3 then 'orange' when 2 then 'yellow' else 'blue' end as score_level,
       level_rank,
       case level_rank when 4 then 'red' when 3 then 'orange' when 2 then 'yellow' else 'blue' end as level,
       case level_rank when 4 then '重大' when 3 then '较大' when 2 then '一般' else '低' end as level_zh,
       coalesce(t.top_factors_zh, '') as top_factors_zh,
       coalesce(t.top_factors_en, '') as top_factors_en,
       '{{ var("risk_config_version") }}' as risk_config_version
from final
left join top as t using (as_of_date, enterprise_id)
