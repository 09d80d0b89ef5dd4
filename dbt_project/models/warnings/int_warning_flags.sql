-- Series units a detector finds abnormal: beyond the count model's threshold (int_warning_scores)
-- and far enough from the expected in plain terms (ratio, min_delta, min_expected), so a
-- statistically rare but tiny change in a busy series does not warn.
{{ config(materialized='table') }}

with scores as (
    select * from {{ ref('int_warning_scores') }}
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
        dispersion,
        score,
        z_threshold,
        tests_per_month
    from scores
    where score >= z_threshold
      and expected >= min_expected
      and delta >= min_delta
      and (
          (direction = 'high' and observed >= ratio * expected)
          or (direction = 'low' and observed <= ratio * expected)
      )
)

select * from final
