-- Series units that a detector finds abnormal, with their score: how many noise units the
-- observed value is from the expected one (robust z; noise = max(1.4826 MAD, floor)).
{{ config(materialized='table') }}

with baselines as (
    select * from {{ ref('int_warning_baselines') }}
    where baseline_weeks >= {{ var('warning_min_baseline_weeks') }}
),

detectors as (
    select * from {{ ref('warning_detectors') }}
),

scored as (
    select
        baselines.site_id,
        detectors.detector_id,
        baselines.signal,
        baselines.series_key,
        baselines.hour_start,
        baselines.step_hours,
        baselines.window_observed as observed,
        baselines.expected,
        {{ warning_sigma('baselines.mad', 'baselines.expected', 'detectors.noise', 'detectors.sigma_floor') }} as sigma,
        case
            when detectors.direction = 'high' then baselines.window_observed - baselines.expected
            else baselines.expected - baselines.window_observed
        end as delta,
        detectors.direction,
        detectors.ratio,
        detectors.min_delta,
        detectors.min_expected,
        detectors.z_threshold,
        detectors.active_from_hour,
        detectors.active_to_hour
    from baselines
    inner join detectors on baselines.signal = detectors.signal
),

final as (
    select
        site_id,
        detector_id,
        signal,
        series_key,
        hour_start,
        step_hours,
        observed,
        expected,
        sigma,
        delta / sigma as score
    from scored
    where extract(hour from hour_start) between active_from_hour and active_to_hour
      and expected >= min_expected
      and delta >= min_delta
      and delta / sigma >= z_threshold
      and (
          (direction = 'high' and observed >= ratio * expected)
          or (direction = 'low' and observed <= ratio * expected)
      )
)

select * from final
