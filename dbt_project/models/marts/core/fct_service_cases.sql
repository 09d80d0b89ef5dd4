-- One government service case with its working-day duration; rebuilt by local day of application.
{{ landing_day_fact_config() }}

with cases as (
    select * from {{ ref('int_service_cases') }}
    {{ landing_day_filter(ref('int_service_cases')) }}
),

calendar as (
    select date_day, workday_index from {{ ref('dim_date') }}
),

item_groups as (
    select item_code, item_group from {{ ref('service_item_groups') }}
),

measured as (
    select
        cases.*,
        cast(cases.applied_time as date) as applied_date,
        cast(cases.completed_time as date) as completed_date,
        item_groups.item_group,
        -- working days d with applied_date < d <= completed_date
        completed_day.workday_index - applied_day.workday_index as working_days_taken
    from cases
    left join item_groups on cases.item_code = item_groups.item_code
    left join calendar as applied_day on applied_day.date_day = cast(cases.applied_time as date)
    left join calendar as completed_day on completed_day.date_day = cast(cases.completed_time as date)
),

final as (
    select
        site_id,
        case_id,
        item_code,
        item_name,
        coalesce(item_group, 'other') as item_group,
        channel,
        applied_time,
        completed_time,
        applied_date,
        {{ month_of('applied_time') }} as applied_month,
        completed_date,
        promised_days,
        working_days_taken,
        cast({{ dbt.datediff('applied_time', 'completed_time', 'second') }} as double) / 3600 as hours_taken,
        completed_time is not null as is_completed,
        working_days_taken <= promised_days as is_on_time,
        channel in ('terminal', 'online') as is_self_service,
        rating,
        rating >= 4 as is_satisfied,
        applicant_elderly,
        source_shape,
        source_record_id,
        _run_id,
        landing_date,
        fetched_at_utc
    from measured
)

select * from final
