-- Passages per (site, gate, local hour): the counts the gate detectors watch. Incremental by
-- landing day like fct_passages, so a daily run aggregates one day, not the whole history.
{{ landing_day_fact_config() }}

with passages as (
    select * from {{ ref('fct_passages') }}
    {{ landing_day_filter(ref('fct_passages')) }}
),

final as (
    select
        site_id,
        gate_id,
        {{ dbt.date_trunc('hour', 'event_time') }} as hour_start,
        count(*) as passages,
        sum(case when tailgating then 1 else 0 end) as tailgating_passages,
        sum(case when direction = 'in' and person_type in ('visitor', 'unknown') then 1 else 0 end) as visitor_unknown_entries,
        sum(case when temperature_c >= {{ var('warning_fever_celsius') }} then 1 else 0 end) as fever_passages,
        landing_date,
        _run_id
    from passages
    where gate_id is not null
    group by site_id, gate_id, {{ dbt.date_trunc('hour', 'event_time') }}, landing_date, _run_id
)

select * from final
