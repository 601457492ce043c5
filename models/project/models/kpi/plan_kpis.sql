{{ config(materialized='table') }}
-- 规划十项目标进度 / Progress against the plan's ten targets (DESIGN.md, "Analytics").
-- Per target: the goal, the figure as of as_of_date, the same figure one year
-- earlier and the trend. Targets 11–13 are the digital plans' response KPIs
-- (issue 24): computed from the response service's timeline
-- (marts.responses) and the drills, over the year before as_of_date. A target whose tables hold no rows says so
-- (figure NULL, status no_data / 暂无数据) instead of failing the run.
with p as (
    select coalesce(try_cast('{{ var("as_of_date") }}' as date), current_date) as as_of_date
), d as (
    select 'now' as tag, as_of_date as day from p
    union all
    select 'prior', as_of_date - interval 365 day from p
), dd as (
    select tag, cast(day as date) as day,
           (date_diff('day', date '1970-01-01', cast(day as date)) + 1) * 86400000000 - 28800000000 as cutoff_us
    from d
),
-- 1: departments whose data the platform shares (eight feeds): a feed counts
-- from its first record on.
firsts as (
    select (select min(received_at) from {{ source('raw', 'incidents') }}) as f1,
           (select min(issued_at) from {{ source('raw', 'building_permits') }}) as f2,
           (select min(occurred_at) from {{ source('raw', 'traffic_collisions') }}) as f3,
           (select min(occurred_at) from {{ source('raw', 'police_cases') }}) as f4,
           (select min(observed_at) from {{ source('raw', 'water_telemetry') }}) as f5,
           (select min(requested_at) from {{ source('raw', 'city_events') }}) as f6,
           (select min(observed_at) from {{ source('raw', 'weather') }}) as f7,
           (select min(window_start) from {{ source('raw', 'mobile_signal') }}) as f8
), t1 as (
    select dd.tag,
           coalesce((epoch_us(f1) < dd.cutoff_us)::int, 0) + coalesce((epoch_us(f2) < dd.cutoff_us)::int, 0)
         + coalesce((epoch_us(f3) < dd.cutoff_us)::int, 0) + coalesce((epoch_us(f4) < dd.cutoff_us)::int, 0)
         + coalesce((epoch_us(f5) < dd.cutoff_us)::int, 0) + coalesce((epoch_us(f6) < dd.cutoff_us)::int, 0)
         + coalesce((epoch_us(f7) < dd.cutoff_us)::int, 0) + coalesce((epoch_us(f8) < dd.cutoff_us)::int, 0) as figure
    from dd, firsts
),
-- 2: command HQs and streets whose plan was revised within the plan period (2021–).
t2 as (
    select dd.tag, count(distinct ep.owner_id) as figure,
           (select count(*) > 0 from {{ source('raw', 'emergency_plans') }})::int as has_data
    from dd
    left join {{ source('raw', 'emergency_plans') }} as ep
      on ep.owner_kind in ('hq', 'street') and ep.revision >= 2
     and epoch_us(ep.revised_at) < dd.cutoff_us and ep.revised_at >= timestamptz '2021-01-01 00:00:00+08'
    group by dd.tag
),
-- 3: digital emergency-plan platforms holding plans.
t3 as (
    select dd.tag, count(distinct ep.platform_id) as figure,
           (select count(*) > 0 from {{ source('raw', 'emergency_plans') }})::int as has_data
    from dd
    left join {{ source('raw', 'emergency_plans') }} as ep
      on ep.digitized and ep.platform_id is not null and epoch_us(ep.revised_at) < dd.cutoff_us
    group by dd.tag
),
unit_plans as (
    select distinct owner_id from {{ source('raw', 'emergency_plans') }} where owner_kind = 'unit'
),
-- 4: share of units responsible for a plan that held a drill in the year before.
t4 as (
    select dd.tag,
           round(100.0 * count(distinct dr.owner_id) / nullif((select count(*) from unit_plans), 0), 1) as figure,
           (select count(*) > 0 from unit_plans)::int * (select count(*) > 0 from {{ source('raw', 'drills') }})::int as has_data
    from dd
    left join {{ source('raw', 'drills') }} as dr
      on dr.kind = 'drill' and dr.owner_kind = 'unit' and dr.owner_id in (select owner_id from unit_plans)
     and epoch_us(dr.held_at) < dd.cutoff_us and epoch_us(dr.held_at) >= dd.cutoff_us - 365 * 86400000000
    group by dd.tag
),
-- 5: share of departments and units with two skill trainings and one drill in the year before.
owners as (
    select distinct owner_kind, owner_id from {{ source('raw', 'drills') }}
), t5 as (
    select dd.tag,
           round(100.0 * count(*) filter (where x.trainings >= 2 and x.drills >= 1) / nullif((select count(*) from owners), 0), 1) as figure,
           (select count(*) > 0 from owners)::int as has_data
    from dd
    left join (
        select dd2.tag, o.owner_kind, o.owner_id,
               count(dr.id) filter (where dr.kind = 'skill_training') as trainings,
               count(dr.id) filter (where dr.kind = 'drill') as drills
        from dd as dd2
        cross join owners as o
        left join {{ source('raw', 'drills') }} as dr
          on dr.owner_kind = o.owner_kind and dr.owner_id = o.owner_id
         and epoch_us(dr.held_at) < dd2.cutoff_us and epoch_us(dr.held_at) >= dd2.cutoff_us - 365 * 86400000000
        group by all
    ) as x on x.tag = dd.tag
    group by dd.tag
),
-- 6: relief capacity (people the supply warehouses serve) against 1 % of the population.
pop as (
    select sum(population) as population from {{ ref('stg_streets') }}
), t6 as (
    select dd.tag,
           round(100.0 * (select sum(capacity_people) from {{ source('raw', 'supply_warehouses') }} where epoch_us(updated_at) < dd.cutoff_us)
                 / nullif(0.01 * (select population from pop), 0), 1) as figure,
           ((select count(*) > 0 from {{ source('raw', 'supply_warehouses') }}) and (select population from pop) > 0)::int as has_data
    from dd
),
-- 7: new class-I earthquake shelters (certified since 2021, or planned ones completed).
t7 as (
    select dd.tag,
           (select count(*) from {{ source('raw', 'shelters') }}
             where level = 'class_i' and certified_on >= date '2021-01-01' and certified_on <= dd.day)
         + (select count(*) from {{ source('raw', 'planned_shelters') }}
             where level = 'class_i' and status in ('completed', 'certified') and planned_year >= 2021 and planned_year <= year(dd.day)) as figure,
           ((select count(*) from {{ source('raw', 'shelters') }}) + (select count(*) from {{ source('raw', 'planned_shelters') }}) > 0)::int as has_data
    from dd
),
-- 8: shelters certified in the year before.
t8 as (
    select dd.tag,
           (select count(*) from {{ source('raw', 'shelters') }}
             where certified_on <= dd.day and certified_on > dd.day - interval 365 day) as figure,
           (select count(*) > 0 from {{ source('raw', 'shelters') }})::int as has_data
    from dd
),
-- 9: emergency-supply warehouses by zone (north, centre, south).
t9 as (
    select dd.tag,
           (select count(distinct zone) from {{ source('raw', 'supply_warehouses') }} where epoch_us(updated_at) < dd.cutoff_us) as figure,
           (select count(*) > 0 from {{ source('raw', 'supply_warehouses') }})::int as has_data
    from dd
),
-- 10: share of communities with an e-bike charging point.
t10 as (
    select dd.tag,
           round(100.0 * (select count(distinct cp.community_code) from {{ source('raw', 'charging_points') }} as cp
                           where cp.opened_on is null or cp.opened_on <= dd.day)
                 / nullif((select count(*) from {{ ref('stg_communities') }}), 0), 1) as figure,
           ((select count(*) > 0 from {{ source('raw', 'charging_points') }}) and (select count(*) > 0 from {{ ref('stg_communities') }}))::int as has_data
    from dd
),
-- 11, 12: response tasks (one duty of one person) notified in the year before:
-- the share acknowledged within 5 minutes of the first notification, and
-- the median minutes to acknowledge (of those acknowledged).
tasks as (
    select task_id,
           min("at") filter (where event = 'notified') as notified_at,
           min("at") filter (where event = 'acknowledged') as ack_at
    from {{ source('marts', 'responses') }}
    where task_id is not null
    group by task_id
), t11 as (
    select dd.tag,
           round(100.0 * count(tk.task_id) filter (where tk.ack_at <= tk.notified_at + interval 5 minute) / nullif(count(tk.task_id), 0), 1) as figure,
           (count(tk.task_id) > 0)::int as has_data
    from dd
    left join tasks as tk
      on epoch_us(tk.notified_at) < dd.cutoff_us and epoch_us(tk.notified_at) >= dd.cutoff_us - 365 * 86400000000
    group by dd.tag
), t12 as (
    select dd.tag,
           round(median(epoch(tk.ack_at - tk.notified_at)) / 60.0, 1) as figure,
           (count(tk.task_id) > 0)::int as has_data
    from dd
    left join tasks as tk
      on tk.ack_at is not null
     and epoch_us(tk.notified_at) < dd.cutoff_us and epoch_us(tk.notified_at) >= dd.cutoff_us - 365 * 86400000000
    group by dd.tag
),
-- 13: drills per unit responsible for a plan, in the year before.
t13 as (
    select dd.tag,
           round(count(dr.id) / nullif((select count(*) from unit_plans), 0), 2) as figure,
           (select count(*) > 0 from unit_plans)::int * (select count(*) > 0 from {{ source('raw', 'drills') }})::int as has_data
    from dd
    left join {{ source('raw', 'drills') }} as dr
      on dr.kind = 'drill' and dr.owner_kind = 'unit' and dr.owner_id in (select owner_id from unit_plans)
     and epoch_us(dr.held_at) < dd.cutoff_us and epoch_us(dr.held_at) >= dd.cutoff_us - 365 * 86400000000
    group by dd.tag
),
figures as (
    select 1 as target_no, tag, cast(figure as double) as figure, (figure > 0)::int as has_data from t1
    union all select 2, tag, figure, has_data from t2
    union all select 3, tag, figure, has_data from t3
    union all select 4, tag, figure, has_data from t4
    union all select 5, tag, figure, has_data from t5
    union all select 6, tag, figure, has_data from t6
    union all select 7, tag, figure, has_data from t7
    union all select 8, tag, figure, has_data from t8
    union all select 9, tag, figure, has_data from t9
    union all select 10, tag, figure, has_data from t10
    union all select 11, tag, figure, has_data from t11
    union all select 12, tag, figure, has_data from t12
    union all select 13, tag, figure, has_data from t13
), goals as (
    select * from (values
        (1, '一体化应急管理综合平台（数据共享部门数）', 'integrated emergency-management platform (departments sharing data)', 8.0, '个部门', 'departments', 'higher'),
        (2, '专项指挥部与街道预案修订', 'plans revised by the 12 command HQs and 15 streets', 27.0, '个', 'plans', 'higher'),
        (3, '数字化预案平台', 'digital emergency-plan platform', 1.0, '个', 'platform', 'higher'),
        (4, '预案责任单位年度演练覆盖率', 'units responsible for a plan that drilled this year', 100.0, '%', '%', 'higher'),
        (5, '部门和单位培训演练达标率（两训一演）', 'departments and units with two trainings and one drill a year', 100.0, '%', '%', 'higher'),
        (6, '应急物资保障能力（占人口 1% 目标）', 'relief capacity against 1 % of the population', 100.0, '%', '%', 'higher'),
        (7, '新增Ⅰ类地震应急避难场所', 'new class-I earthquake shelters', 1.0, '个', 'shelters', 'higher'),
        (8, '年度新建或认定达标避难场所', 'shelters built or certified in the last year', 1.0, '个', 'shelters', 'higher'),
        (9, '应急物资储备库（北、中、南）', 'emergency-supply warehouses (north, centre, south)', 3.0, '个', 'warehouses', 'higher'),
        (10, '电动自行车充电设施社区覆盖率', 'communities with e-bike charging', 100.0, '%', '%', 'higher'),
        (11, '应急响应任务 5 分钟内确认率', 'response tasks acknowledged within 5 minutes', 90.0, '%', '%', 'higher'),
        (12, '应急响应任务确认用时（中位数）', 'median time to acknowledge a response task', 5.0, '分钟', 'min', 'lower'),
        (13, '预案责任单位年均演练次数', 'drills per unit responsible for a plan, last year', 1.0, '次', 'drills', 'higher')
    ) as g(target_no, target_zh, target_en, goal, unit_zh, unit_en, better)
)
select g.target_no, g.target_zh, g.target_en, g.goal,
       case when g.unit_zh = g.unit_en then g.unit_zh else g.unit_zh || ' ' || g.unit_en end as unit, g.unit_zh, g.unit_en,
       case when n.has_data = 1 then n.figure end as figure,
       case when pr.has_data = 1 then pr.figure end as figure_year_before,
       g.better,
       case when n.has_data = 0 then 'no_data'
            when n.figure is null then 'no_data'
            when (g.better = 'higher' and n.figure >= g.goal) or (g.better = 'lower' and n.figure <= g.goal) then 'met'
            else 'in_progress' end as status,
       case when n.has_data = 0 or n.figure is null then '暂无数据 / no data'
            when (g.better = 'higher' and n.figure >= g.goal) or (g.better = 'lower' and n.figure <= g.goal) then '已达成 / met'
            else '推进中 / in progress' end as status_label,
       case when n.has_data = 0 or n.figure is null or pr.figure is null then null
            when n.figure > pr.figure then 'up'
            when n.figure < pr.figure then 'down'
            else 'flat' end as trend,
       (select as_of_date from p) as as_of_date
from goals as g
left join figures as n on n.target_no = g.target_no and n.tag = 'now'
left join figures as pr on pr.target_no = g.target_no and pr.tag = 'prior'
order by g.target_no
