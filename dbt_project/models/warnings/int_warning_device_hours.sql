-- Devices reporting and online per (site, device type, local hour); incremental by landing
-- day like fct_device_hours.
{{ landing_day_fact_config() }}

with device_hours as (
    select * from {{ ref('fct_device_hours') }}
    {{ landing_day_filter(ref('fct_device_hours')) }}
),

final as (
    select
        site_id,
        device_type,
        hour_start,
        count(*) as devices,
        sum(case when online then 1 else 0 end) as devices_online,
        landing_date,
        _run_id
    from device_hours
    group by site_id, device_type, hour_start, landing_date, _run_id
)

select * from final
