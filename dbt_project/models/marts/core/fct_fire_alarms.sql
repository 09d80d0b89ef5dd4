-- One smart-fire sensor alarm with its acknowledgement time; rebuilt by local day of raising.
{{ landing_day_fact_config() }}

with alarms as (
    select * from {{ ref('int_fire_alarms') }}
    {{ landing_day_filter(ref('int_fire_alarms')) }}
),

final as (
    select
        site_id,
        alarm_id,
        sensor_id,
        alarm_type,
        raised_time,
        acknowledged_time,
        closed_time,
        is_false_alarm,
        cast(raised_time as date) as raised_date,
        {{ month_of('raised_time') }} as raised_month,
        {{ minutes_between('raised_time', 'acknowledged_time') }} as minutes_to_acknowledge,
        closed_time is not null as is_closed,
        source_shape,
        source_record_id,
        _run_id,
        landing_date,
        fetched_at_utc
    from alarms
)

select * from final
