-- Fire-sensor alarms per (site, local hour); incremental by landing day like fct_fire_alarms.
{{ landing_day_fact_config() }}

with alarms as (
    select * from {{ ref('fct_fire_alarms') }}
    {{ landing_day_filter(ref('fct_fire_alarms')) }}
),

final as (
    select
        site_id,
        {{ dbt.date_trunc('hour', 'raised_time') }} as hour_start,
        count(*) as fire_alarms,
        landing_date,
        _run_id
    from alarms
    group by site_id, {{ dbt.date_trunc('hour', 'raised_time') }}, landing_date, _run_id
)

select * from final
