-- Every series unit a detector looks at, scored with a count model: how far in the tail of a
-- quasi-Poisson count (mean = the seasonal baseline, variance = dispersion x mean) the observed
-- value lies, as a normal z, and the z a unit must reach so that the detector's chance warnings
-- stay within its budget of false alarms per site per month (Bonferroni over the site's series
-- and the units a month tests). The dispersion is learnt per series from its own trailing
-- `warning_dispersion_days`: the mean squared Pearson residual, each clipped so that an episode
-- inside the history cannot blunt the detector, and never below 1 (Poisson).
{{ config(materialized='table') }}

with baselines as (
    select * from {{ ref('int_warning_baselines') }}
),

detectors as (
    select * from {{ ref('warning_detectors') }}
),

units as (
    select
        baselines.site_id,
        detectors.detector_id,
        baselines.signal,
        baselines.series_key,
        baselines.hour_start,
        baselines.step_hours,
        baselines.window_observed as observed,
        baselines.expected,
        greatest(baselines.expected, detectors.expected_floor) as mean,
        baselines.baseline_weeks,
        {{ dbt.datediff("cast('2000-01-01' as timestamp)", 'baselines.hour_start', 'hour') }} as hour_number
    from baselines
    inner join detectors on baselines.signal = detectors.signal
    where baselines.baseline_weeks >= {{ var('warning_min_baseline_weeks') }}
      and extract(hour from baselines.hour_start) between detectors.active_from_hour and detectors.active_to_hour
),

residuals as (
    select
        units.*,
        least(power(units.observed - units.mean, 2) / units.mean, {{ var('warning_residual_clip') }}) as squared_residual
    from units
),

dispersed as (
    select
        residuals.*,
        greatest(coalesce(avg(squared_residual) over (
            partition by site_id, detector_id, series_key
            order by hour_number
            range between {{ 24 * var('warning_dispersion_days') }} preceding and 1 preceding
        ), 1), 1) as dispersion
    from residuals
),

-- tests a month: the site's series of the detector x the units a day it looks at x 30.44 days
tests as (
    select
        series.site_id,
        series.detector_id,
        count(*) * (detectors.active_to_hour - detectors.active_from_hour + 1) / detectors.step_hours
            * 30.4375 as tests_per_month
    from (select distinct site_id, detector_id, series_key from units) as series
    inner join detectors on series.detector_id = detectors.detector_id
    group by series.site_id, series.detector_id, detectors.active_to_hour, detectors.active_from_hour, detectors.step_hours
),

final as (
    select
        dispersed.site_id,
        dispersed.detector_id,
        dispersed.signal,
        dispersed.series_key,
        dispersed.hour_start,
        dispersed.step_hours,
        dispersed.observed,
        dispersed.expected,
        dispersed.mean,
        dispersed.dispersion,
        {{ count_tail_z('dispersed.observed', 'dispersed.mean', 'dispersed.dispersion', 'detectors.direction') }} as score,
        {{ normal_upper_quantile('detectors.false_alarms_per_site_month / tests.tests_per_month') }} as z_threshold,
        tests.tests_per_month,
        case
            when detectors.direction = 'high' then dispersed.observed - dispersed.expected
            else dispersed.expected - dispersed.observed
        end as delta,
        detectors.direction,
        detectors.ratio,
        detectors.min_delta,
        detectors.min_expected
    from dispersed
    inner join detectors on dispersed.detector_id = detectors.detector_id
    inner join tests on dispersed.site_id = tests.site_id and dispersed.detector_id = tests.detector_id
)

select * from final
