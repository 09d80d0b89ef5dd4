-- One answer to one question of the resident satisfaction survey. Rebuilt by local day
-- (see macros/incremental.sql), like the other landing-day facts.
{{ landing_day_fact_config() }}

with answers as (
    select * from {{ ref('int_surveys') }}
    {{ landing_day_filter(ref('int_surveys')) }}
),

final as (
    select
        site_id,
        response_id,
        question_id,
        answered_date,
        {{ month_of('answered_date') }} as answered_month,
        score,
        respondent_key,
        source_shape,
        _run_id,
        landing_date
    from answers
)

select * from final
