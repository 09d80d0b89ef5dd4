-- Observed vs expected around each warning (the series of its peak from
-- `warning_series_margin_hours` before the start to as long after the end), with the count
-- model's threshold line, for the "observed vs expected" chart.
with warnings as (
    select * from {{ ref('fct_warnings') }}
),

scores as (
    select * from {{ ref('int_warning_scores') }}
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
        scores.hour_start,
        scores.observed,
        scores.expected,
        {{ count_threshold('scores.mean', 'scores.dispersion', 'scores.z_threshold', 'scores.direction') }} as threshold,
        scores.hour_start >= warnings.start_time
            and scores.hour_start < warnings.last_abnormal_until as in_warning
    from warnings
    inner join scores
        on warnings.site_id = scores.site_id
        and warnings.kind = scores.detector_id
        and warnings.series_key = scores.series_key
        and scores.hour_start >= {{ dbt.dateadd('hour', -var('warning_series_margin_hours'), 'warnings.start_time') }}
        and scores.hour_start < {{ dbt.dateadd('hour', var('warning_series_margin_hours'), 'warnings.last_abnormal_until') }}
)

select * from final
