-- One resident in a register snapshot, with how fresh the record's verification is. Rebuilt by local day
-- (see macros/incremental.sql), like the other landing-day facts.
{{ landing_day_fact_config() }}

with register as (
    select * from {{ ref('int_register') }}
    {{ landing_day_filter(ref('int_register')) }}
),

final as (
    select
        site_id,
        snapshot_date,
        {{ month_of('snapshot_date') }} as snapshot_month,
        person_key,
        household_key,
        building,
        age_band,
        is_elderly,
        lives_alone,
        last_verified_date,
        cast({{ dbt.datediff('last_verified_date', 'snapshot_date', 'day') }} as bigint) as days_since_verified,
        coalesce({{ dbt.datediff('last_verified_date', 'snapshot_date', 'day') }} <= {{ var('register_fresh_days') }}, false) as is_fresh,
        source_shape,
        _run_id,
        landing_date
    from register
)

select * from final
