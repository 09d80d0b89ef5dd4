-- Fever and tailgating alerts per (site, local hour); incremental by landing day like fct_alerts.
{{ landing_day_fact_config() }}

with alerts as (
    select * from {{ ref('fct_alerts') }}
    {{ landing_day_filter(ref('fct_alerts')) }}
),

final as (
    select
        site_id,
        {{ dbt.date_trunc('hour', 'raised_time') }} as hour_start,
        sum(case when alert_type = 'fever' then 1 else 0 end) as fever_alerts,
        sum(case when alert_type = 'tailgating' then 1 else 0 end) as tailgating_alerts,
        landing_date,
        _run_id
    from alerts
    group by site_id, {{ dbt.date_trunc('hour', 'raised_time') }}, landing_date, _run_id
)

select * from final
