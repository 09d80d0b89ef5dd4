-- The seasonal baseline of every series unit: the same hour of the week (or the same weekday
-- for daily signals) over the trailing `warning_baseline_weeks` weeks. Expected = their median,
-- spread = their median absolute deviation (MAD): one abnormal week among them moves neither.
-- Incremental by local day like the series: a run that names its landing days rebuilds the
-- days whose medians read a rebuilt series day (macros/warnings.sql).
-- depends_on: {{ ref('warning_detectors') }}
{{ landing_day_fact_config() }}
{%- set days = warning_rebuild_days() %}

with series as (
    select * from {{ ref('int_warning_series') }}
    where {{ in_days('landing_date', days.baselines if days else none) }}
),

past_series as (
    select * from {{ ref('int_warning_series') }}
    where {{ in_days('landing_date', days.baseline_inputs if days else none) }}
),

weeks_back as (
    select generated_number as weeks_back
    from ({{ dbt.generate_series(var('warning_baseline_weeks')) }}) as week_numbers
),

history as (
    select
        series.site_id,
        series.signal,
        series.series_key,
        series.hour_start,
        past.window_observed as past_value
    from series
    cross join weeks_back
    inner join past_series as past
        on series.site_id = past.site_id
        and series.signal = past.signal
        and series.series_key = past.series_key
        and past.hour_start = {{ dbt.dateadd('day', '-7 * weeks_back.weeks_back', 'series.hour_start') }}
),

{{ median_and_mad('history', ['site_id', 'signal', 'series_key', 'hour_start']) }},

final as (
    select
        series.site_id,
        series.signal,
        series.series_key,
        series.hour_start,
        series.step_hours,
        series.observed,
        series.window_observed,
        coalesce(medians.baseline_weeks, 0) as baseline_weeks,
        medians.expected,
        deviations.mad,
        series.landing_date
    from series
    left join medians
        on series.site_id = medians.site_id
        and series.signal = medians.signal
        and series.series_key = medians.series_key
        and series.hour_start = medians.hour_start
    left join deviations
        on series.site_id = deviations.site_id
        and series.signal = deviations.signal
        and series.series_key = deviations.series_key
        and series.hour_start = deviations.hour_start
)

select * from final
