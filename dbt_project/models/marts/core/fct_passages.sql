-- One pedestrian passage, vendor-neutral; rebuilt by local day (see macros/incremental.sql).
{{ landing_day_fact_config() }}

with passages as (
    select * from {{ ref('int_passages') }}
    {{ landing_day_filter(ref('int_passages')) }}
),

final as (
    select
        site_id,
        event_id,
        event_time,
        cast(event_time as date) as event_date,
        {{ month_of('event_time') }} as event_month,
        gate_id,
        direction,
        method,
        person_type,
        person_key,
        appointment_id,
        temperature_c,
        tailgating,
        method in ('face', 'qr_visitor') as is_contact_free,
        (person_type = 'visitor' and direction = 'in') as is_visitor_entry,
        source_shape,
        source_record_id,
        _run_id,
        landing_date,
        fetched_at_utc
    from passages
)

select * from final
