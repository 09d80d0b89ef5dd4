-- One device-hour: was the device online; rebuilt by local day.
{{ landing_day_fact_config() }}

with device_hours as (
    select * from {{ ref('int_device_status') }}
    {{ landing_day_filter(ref('int_device_status')) }}
),

final as (
    select
        site_id,
        device_id,
        device_type,
        key_point_id,
        hour_start,
        cast(hour_start as date) as hour_date,
        {{ month_of('hour_start') }} as hour_month,
        online,
        source_shape,
        _run_id,
        landing_date,
        fetched_at_utc
    from device_hours
)

select * from final
