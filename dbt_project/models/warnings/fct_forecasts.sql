-- Daily passages and service cases per site: the last `forecast_history_days` observed days
-- and the next `forecast_horizon_days`, each with the seasonal forecast (median of the same
-- weekday over the trailing `warning_baseline_weeks` weeks) and an interval of
-- ± forecast_interval_z noise units (noise = max(1.4826 MAD, sqrt(forecast))). The same
-- robust baseline as the detectors: a past outage or spike does not bend the forecast.
with delivered as (
    select site_id, kind, landing_date from {{ ref('fct_source_days') }} where is_delivered
),

passages as (
    select series.site_id, cast(series.hour_start as date) as day, sum(series.observed) as actual
    from {{ ref('int_warning_series') }} as series
    where series.signal = 'gate_passages'
    group by series.site_id, cast(series.hour_start as date)
),

cases as (
    select delivered.site_id, delivered.landing_date as day, count(fct.case_id) as actual
    from delivered
    left join {{ ref('fct_service_cases') }} as fct
        on delivered.site_id = fct.site_id and delivered.landing_date = fct.applied_date
    where delivered.kind = 'service_cases'
    group by delivered.site_id, delivered.landing_date
),

daily as (
    select site_id, 'passages' as measure, day, cast(actual as double) as actual from passages
    union all
    select site_id, 'service_cases' as measure, day, cast(actual as double) as actual from cases
),

last_days as (
    select site_id, measure, max(day) as last_day from daily group by site_id, measure
),

horizon as (
    select generated_number as days_ahead from ({{ dbt.generate_series(var('forecast_horizon_days')) }}) as horizon_numbers
),

targets as (
    select daily.site_id, daily.measure, daily.day, daily.actual, false as is_forecast
    from daily
    inner join last_days on daily.site_id = last_days.site_id and daily.measure = last_days.measure
    where daily.day > cast({{ dbt.dateadd('day', -var('forecast_history_days'), 'last_days.last_day') }} as date)
    union all
    select
        last_days.site_id,
        last_days.measure,
        cast({{ dbt.dateadd('day', 'horizon.days_ahead', 'last_days.last_day') }} as date) as day,
        cast(null as double) as actual,
        true as is_forecast
    from last_days
    cross join horizon
),

weeks_back as (
    select generated_number as weeks_back
    from ({{ dbt.generate_series(var('warning_baseline_weeks')) }}) as week_numbers
),

history as (
    select targets.site_id, targets.measure, targets.day, past.actual as past_value
    from targets
    cross join weeks_back
    inner join daily as past
        on targets.site_id = past.site_id
        and targets.measure = past.measure
        and past.day = cast({{ dbt.dateadd('day', '-7 * weeks_back.weeks_back', 'targets.day') }} as date)
),

{{ median_and_mad('history', ['site_id', 'measure', 'day']) }},

-- noise: the MAD scaled to a standard deviation, never below the Poisson sqrt(forecast)
intervals as (
    select
        medians.site_id,
        medians.measure,
        medians.day,
        medians.expected,
        medians.baseline_weeks,
        greatest(1.4826 * deviations.mad, sqrt(medians.expected)) as sigma
    from medians
    inner join deviations
        on medians.site_id = deviations.site_id and medians.measure = deviations.measure and medians.day = deviations.day
),

sites as (
    select site_id, name_zh, street_id, street_name_zh from {{ ref('dim_site') }}
),

final as (
    select
        targets.site_id,
        sites.name_zh as site_name_zh,
        sites.street_id,
        sites.street_name_zh,
        targets.measure,
        case when targets.measure = 'passages' then '日通行人次' else '日受理办件' end as measure_name_zh,
        targets.day,
        targets.is_forecast,
        case when targets.is_forecast then '预测' else '实际' end as row_type_zh,
        targets.actual,
        intervals.expected as forecast,
        greatest(intervals.expected - {{ var('forecast_interval_z') }} * intervals.sigma, 0) as forecast_lower,
        intervals.expected + {{ var('forecast_interval_z') }} * intervals.sigma as forecast_upper,
        cast(coalesce(intervals.baseline_weeks, 0) as bigint) as baseline_weeks
    from targets
    left join intervals
        on targets.site_id = intervals.site_id and targets.measure = intervals.measure and targets.day = intervals.day
    left join sites on targets.site_id = sites.site_id
)

select * from final
