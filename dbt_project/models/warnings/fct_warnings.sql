-- One row per warning episode: the abnormal units of one detector at one site merge, across
-- its series (gates, device types) and hours (allowing `merge_gap_units` normal units inside),
-- so an incident seen at three gates is one warning and an ongoing episode is the same row,
-- updated by every run, with the same warning_id (site, kind and start). Severity says how
-- rare the peak is at this site: the return period of so extreme a unit among all the units
-- the detector tests there, and only a safety-relevant kind can be high.
with flags as (
    select * from {{ ref('int_warning_flags') }}
),

detectors as (
    select * from {{ ref('warning_detectors') }}
),

series_ends as (
    select site_id, signal, max(hour_start) as last_hour
    from {{ ref('int_warning_series') }}
    group by site_id, signal
),

sites as (
    select site_id, name_zh, name_en, street_id, street_name_zh from {{ ref('dim_site') }}
),

marked as (
    select
        flags.*,
        detectors.merge_gap_units,
        case
            when lag(flags.hour_start) over (
                partition by flags.site_id, flags.detector_id order by flags.hour_start, flags.series_key
            ) is null then 1
            when {{ dbt.datediff(
                'lag(flags.hour_start) over (partition by flags.site_id, flags.detector_id order by flags.hour_start, flags.series_key)',
                'flags.hour_start', 'hour') }} > flags.step_hours * (1 + detectors.merge_gap_units) then 1
            else 0
        end as starts_episode
    from flags
    inner join detectors on flags.detector_id = detectors.detector_id
),

numbered as (
    select
        marked.*,
        sum(starts_episode) over (
            partition by site_id, detector_id order by hour_start, series_key rows between unbounded preceding and current row
        ) as episode_no
    from marked
),

ranked as (
    select
        numbered.*,
        dense_rank() over (partition by site_id, detector_id, episode_no order by hour_start) as unit_no,
        row_number() over (
            partition by site_id, detector_id, episode_no order by score desc, hour_start, series_key
        ) as peak_rank
    from numbered
),

episodes as (
    select
        ranked.site_id,
        ranked.detector_id,
        ranked.signal,
        ranked.episode_no,
        min(ranked.step_hours) as step_hours,
        min(ranked.hour_start) as first_abnormal_hour,
        max(ranked.hour_start) as last_abnormal_hour,
        count(distinct ranked.hour_start) as abnormal_units,
        count(distinct ranked.series_key) as series_count,
        max(ranked.score) as score,
        max(ranked.tests_per_month) as tests_per_month,
        sum(ranked.observed) as observed_sum,
        sum(ranked.expected) as expected_sum,
        max(case when ranked.peak_rank = 1 then ranked.series_key end) as series_key,
        max(case when ranked.peak_rank = 1 then ranked.observed end) as observed_peak,
        max(case when ranked.peak_rank = 1 then ranked.expected end) as expected_peak,
        max(case when ranked.peak_rank = 1 then ranked.hour_start end) as peak_hour,
        max(case when ranked.unit_no = detectors.min_units then ranked.hour_start end) as confirming_hour
    from ranked
    inner join detectors on ranked.detector_id = detectors.detector_id
    group by ranked.site_id, ranked.detector_id, ranked.signal, ranked.episode_no
),

described as (
    select
        episodes.*,
        detectors.*,
        sites.name_zh as site_name_zh,
        sites.name_en as site_name_en,
        sites.street_id,
        sites.street_name_zh,
        case
            when detectors.window_within_day then {{ dbt.date_trunc('day', 'episodes.first_abnormal_hour') }}
            else {{ dbt.dateadd('hour', 'episodes.step_hours - detectors.window_hours', 'episodes.first_abnormal_hour') }}
        end as start_time,
        {{ dbt.dateadd('hour', 'episodes.step_hours', 'episodes.last_abnormal_hour') }} as abnormal_until,
        {{ dbt.dateadd('hour', 'episodes.step_hours', 'episodes.confirming_hour') }} as detected_at,
        episodes.last_abnormal_hour >= {{ dbt.dateadd('hour', '-episodes.step_hours * detectors.merge_gap_units', 'series_ends.last_hour') }} as is_open,
        case when detectors.window_hours > 1 then episodes.observed_peak else episodes.observed_sum end as observed_value,
        case when detectors.window_hours > 1 then episodes.expected_peak else episodes.expected_sum end as expected_value,
        -- years between chance units as extreme as the peak, among all the units tested here
        -({{ normal_upper_tail_log10('episodes.score') }}) - ln(episodes.tests_per_month * 12) / ln(10) as return_years_log10,
        case
            when episodes.signal like 'gate%' then 'gate ' || episodes.series_key
            when episodes.signal = 'device_offline' then episodes.series_key || ' devices'
            else 'whole site'
        end as series_label_en,
        case
            when episodes.signal like 'gate%' then '出入口 ' || episodes.series_key
            when episodes.series_key = 'camera' then '摄像机'
            when episodes.series_key = 'gate' then '门禁控制器'
            when episodes.series_key = 'fire_sensor' then '消防传感器'
            when episodes.series_key = 'iot_sensor' then '物联网传感器'
            else '全社区'
        end as series_label_zh,
        case when episodes.step_hours >= 24 then ' day(s)' else ' h' end as unit_of_time_en,
        case when episodes.step_hours >= 24 then '天' else '小时' end as unit_of_time_zh
    from episodes
    inner join detectors on episodes.detector_id = detectors.detector_id
    inner join series_ends
        on episodes.site_id = series_ends.site_id
        and episodes.signal = series_ends.signal
    left join sites on episodes.site_id = sites.site_id
    where episodes.abnormal_units >= detectors.min_units
),

{#- the return period in whole years, as the explanations print it -#}
{%- set return_years = "cast(cast(greatest(round(power(10, return_years_log10), 0), 1) as bigint) as " ~ dbt.type_string() ~ ")" %}

final as (
    select
        {{ dbt.hash("site_id || '|' || detector_id || '|' || cast(start_time as " ~ dbt.type_string() ~ ")") }} as warning_id,
        site_id,
        site_name_zh,
        street_id,
        street_name_zh,
        detector_id as kind,
        name_zh as kind_name_zh,
        name_en as kind_name_en,
        signal,
        series_key,
        series_label_zh,
        start_time,
        case when is_open then cast(null as timestamp) else abnormal_until end as end_time,
        abnormal_until as last_abnormal_until,
        detected_at,
        cast(start_time as date) as start_date,
        is_open,
        case when is_open then 'open' else 'closed' end as status,
        case when is_open then '进行中' else '已结束' end as status_zh,
        cast(abnormal_units as bigint) as abnormal_units,
        {{ dbt.datediff('start_time', 'abnormal_until', 'hour') }} as duration_hours,
        severity,
        case severity when 'high' then '高' when 'medium' then '中' else '低' end as severity_zh,
        case severity when 'high' then 3 when 'medium' then 2 else 1 end as severity_rank,
        score,
        return_years_log10,
        rarity_zh,
        cast(series_count as bigint) as series_count,
        observed_value,
        expected_value,
        peak_hour,
        unit_zh,
        unit_en,
        name_zh || '：' || site_name_zh || series_label_zh || '，自' || {{ warning_time('start_time') }}
            || '起异常' || cast(abnormal_units as {{ dbt.type_string() }}) || unit_of_time_zh || '，观测 '
            || {{ warning_value('observed_value') }} || unit_zh || '，预期 '
            || {{ warning_value('expected_value') }} || unit_zh || series_more_zh || '，按正常波动' || rarity_zh
            || '。规则：' || rule_zh as explanation_zh,
        name_en || ' at ' || site_name_en || ', ' || series_label_en || series_more_en || ': '
            || {{ warning_value('observed_value') }} || ' ' || unit_en || ' observed where ' || {{ warning_value('expected_value') }}
            || ' expected, abnormal for ' || cast(abnormal_units as {{ dbt.type_string() }}) || unit_of_time_en || ' from '
            || {{ warning_time('start_time') }} || '; as normal variation ' || rarity_en || '. Rule: ' || rule_en as explanation_en,
        rule_zh,
        rule_en
    from (
        select
            described.*,
            case
                when safety_relevant and return_years_log10 >= ln(high_years) / ln(10) then 'high'
                when return_years_log10 >= ln(medium_years) / ln(10) then 'medium'
                else 'low'
            end as severity,
            case
                when return_years_log10 >= 3 then '比千年一遇更罕见'
                else '约每' || {{ return_years }} || '年一遇'
            end as rarity_zh,
            case
                when return_years_log10 >= 3 then 'rarer than once in a thousand years'
                else 'about once in ' || {{ return_years }} || ' years'
            end as rarity_en,
            case
                when series_count > 1 then '等' || cast(series_count as {{ dbt.type_string() }}) || '处'
                else ''
            end as series_more_zh,
            case
                when series_count > 1 then ' and ' || cast(series_count - 1 as {{ dbt.type_string() }}) || ' more'
                else ''
            end as series_more_en,
            signal_zh || case when direction = 'low' then '不高于预期的' else '不低于预期的' end
                || cast(ratio as {{ dbt.type_string() }}) || '倍且偏差至少 ' || cast(min_delta as {{ dbt.type_string() }})
                || case when min_expected > 0 then '（预期至少 ' || cast(min_expected as {{ dbt.type_string() }}) || '）' else '' end
                || '，且按计数模型偶然出现的可能低于每社区每月 ' || cast(false_alarms_per_site_month as {{ dbt.type_string() }})
                || ' 次，连续 ' || cast(min_units as {{ dbt.type_string() }}) || unit_of_time_zh || '即预警' as rule_zh,
            signal_en || case when direction = 'low' then ' at most ' else ' at least ' end
                || cast(ratio as {{ dbt.type_string() }}) || 'x the expected and ' || cast(min_delta as {{ dbt.type_string() }})
                || case when direction = 'low' then ' below it' else ' above it' end
                || case when min_expected > 0 then ' (at least ' || cast(min_expected as {{ dbt.type_string() }}) || ' expected)' else '' end
                || ', and so far in the tail of a count model that chance alone would raise it less than '
                || cast(false_alarms_per_site_month as {{ dbt.type_string() }}) || ' times a site a month, for '
                || cast(min_units as {{ dbt.type_string() }}) || unit_of_time_en || ' in a row' as rule_en
        from described
    ) as with_rules
)

select * from final
