-- Passages per site, local hour and method: what the 社区详情 charts read instead of one row
-- per passage (fct_passages has ~100 M rows at district scale; this has ~4 per site-hour).
-- Incremental by landing day like fct_passages, so a daily run aggregates one day.
{{ landing_day_fact_config() }}

with passages as (
    select * from {{ ref('fct_passages') }}
    {{ landing_day_filter(ref('fct_passages')) }}
),

final as (
    select
        site_id,
        {{ dbt.date_trunc('hour', 'event_time') }} as hour_start,
        event_date,
        event_month,
        cast(extract(hour from event_time) as {{ dbt.type_int() }}) as hour_of_day,
        method,
        cast(count(*) as {{ dbt.type_bigint() }}) as passages,
        cast(sum(case when is_contact_free then 1 else 0 end) as {{ dbt.type_bigint() }}) as contact_free_passages,
        cast(sum(case when is_visitor_entry then 1 else 0 end) as {{ dbt.type_bigint() }}) as visitor_entries,
        cast(
            sum(case when is_visitor_entry and appointment_id is not null then 1 else 0 end) as {{ dbt.type_bigint() }}
        ) as visitor_appointment_entries,
        cast(sum(case when tailgating then 1 else 0 end) as {{ dbt.type_bigint() }}) as tailgating_passages,
        landing_date,
        _run_id
    from passages
    group by
        site_id,
        {{ dbt.date_trunc('hour', 'event_time') }},
        event_date,
        event_month,
        extract(hour from event_time),
        method,
        landing_date,
        _run_id
)

select * from final
