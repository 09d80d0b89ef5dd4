-- Calendar of local days with working days (Monday-Friday unless calendar_overrides says otherwise).
with spine as (
    {{ dbt.date_spine('day', "cast('" ~ var('calendar_start') ~ "' as date)", "(cast('" ~ var('calendar_end') ~ "' as date) + interval '1' day)") }}
),

days as (
    select cast(date_day as date) as date_day from spine
),

overrides as (
    select calendar_date, is_workday, name_zh, name_en from {{ ref('calendar_overrides') }}
),

flagged as (
    select
        days.date_day,
        {{ iso_day_of_week('days.date_day') }} as iso_day_of_week,
        coalesce(overrides.is_workday, {{ iso_day_of_week('days.date_day') }} <= 5) as is_workday,
        overrides.name_zh as holiday_name_zh,
        overrides.name_en as holiday_name_en
    from days
    left join overrides on overrides.calendar_date = days.date_day
),

final as (
    select
        date_day,
        {{ month_of('date_day') }} as month_start,
        cast(extract(year from date_day) as integer) as year,
        cast(extract(quarter from date_day) as integer) as quarter,
        cast(extract(month from date_day) as integer) as month_of_year,
        cast(extract(day from date_day) as integer) as day_of_month,
        cast(iso_day_of_week as integer) as iso_day_of_week,
        is_workday,
        holiday_name_zh,
        holiday_name_en,
        cast(sum(case when is_workday then 1 else 0 end) over (order by date_day rows between unbounded preceding and current row) as integer) as workday_index
    from flagged
)

select * from final
