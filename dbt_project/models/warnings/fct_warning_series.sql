-- Observed vs expected around each warning (the watched series from `warning_series_margin_hours`
-- before the start to as long after the end), for the "observed vs expected" chart.
with warnings as (
    select * from {{ ref('fct_warnings') }}
),

detectors as (
    select detector_id, z_threshold, noise, sigma_floor, direction from {{ ref('warning_detectors') }}
),

baselines as (
    select * from {{ ref('int_warning_baselines') }}
),

final as (
    select
        warnings.warning_id,
        warnings.kind_name_zh || ' · ' || warnings.site_name_zh || ' · ' || warnings.series_label_zh || ' · '
            || {{ warning_time('warnings.start_time') }} as warning_label,
        warnings.site_id,
        warnings.site_name_zh,
        warnings.street_id,
        warnings.street_name_zh,
        warnings.kind,
        baselines.hour_start,
        baselines.window_observed as observed,
        baselines.expected,
        case when detectors.direction = 'low' then -1 else 1 end * detectors.z_threshold
            * {{ warning_sigma('baselines.mad', 'baselines.expected', 'detectors.noise', 'detectors.sigma_floor') }}
            + baselines.expected as threshold,
        baselines.hour_start >= warnings.start_time
            and baselines.hour_start < warnings.last_abnormal_until as in_warning
    from warnings
    inner join detectors on warnings.kind = detectors.detector_id
    inner join baselines
        on warnings.site_id = baselines.site_id
        and warnings.signal = baselines.signal
        and warnings.series_key = baselines.series_key
        and baselines.hour_start >= {{ dbt.dateadd('hour', -var('warning_series_margin_hours'), 'warnings.start_time') }}
        and baselines.hour_start < {{ dbt.dateadd('hour', var('warning_series_margin_hours'), 'warnings.last_abnormal_until') }}
)

select * from final
