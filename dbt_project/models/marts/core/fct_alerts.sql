-- One video/AI or gate alert with its handling durations; rebuilt by local day of raising.
{{ landing_day_fact_config() }}

with alerts as (
    select * from {{ ref('int_alerts') }}
    {{ landing_day_filter(ref('int_alerts')) }}
),

final as (
    select
        site_id,
        alert_id,
        alert_type,
        device_id,
        raised_time,
        acknowledged_time,
        closed_time,
        cast(raised_time as date) as raised_date,
        {{ month_of('raised_time') }} as raised_month,
        {{ minutes_between('raised_time', 'acknowledged_time') }} as minutes_to_acknowledge,
        {{ minutes_between('raised_time', 'closed_time') }} as minutes_to_close,
        closed_time is not null as is_closed,
        alert_type in ('{{ var("managed_alert_types") | join("', '") }}') as is_managed_type,
        source_shape,
        source_record_id,
        _run_id,
        landing_date,
        fetched_at_utc
    from alerts
)

select * from final
