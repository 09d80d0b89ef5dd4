-- Device-hours and online device-hours per site, local day and device type: what the 社区详情
-- online-rate chart reads instead of one row per device-hour (~27 M rows at district scale).
-- Incremental by landing day like fct_device_hours.
{{ landing_day_fact_config() }}

with device_hours as (
    select * from {{ ref('fct_device_hours') }}
    {{ landing_day_filter(ref('fct_device_hours')) }}
),

final as (
    select
        site_id,
        hour_date,
        hour_month,
        device_type,
        cast(count(*) as {{ dbt.type_bigint() }}) as device_hours,
        cast(sum(case when online then 1 else 0 end) as {{ dbt.type_bigint() }}) as online_hours,
        landing_date,
        _run_id
    from device_hours
    group by site_id, hour_date, hour_month, device_type, landing_date, _run_id
)

select * from final
