-- One row per (site, month, indicator) and per (district, month, indicator): the value,
-- its numerator and denominator. Ratios are pooled for the district (sum of numerators ÷
-- sum of denominators); medians and percentiles are recomputed over the pooled rows.
with catalog as (
    select indicator_id, value_scale, source_kinds from {{ ref('indicator_catalog') }}
),

sites as (
    select * from {{ ref('dim_site') }} where not is_district
),

-- the months the evaluation period covers from their first day; the month in progress is rated
-- to date, but a month the landed data only reaches into at its end (a vendor's files from the
-- week before the roll-out) is not rated on those few days
months as (
    select month
    from {{ ref('fct_source_days') }}
    where is_expected
    group by month
    having min(landing_date) = month
),

-- infrastructure ------------------------------------------------------------------------
device_hours as (
    select
        site_id,
        hour_month as month,
        count(*) as device_hours,
        sum(case when online then 1 else 0 end) as online_hours,
        sum(case when device_type = 'camera' then 1 else 0 end) as camera_hours,
        sum(case when device_type = 'camera' and online then 1 else 0 end) as camera_online_hours,
        sum(case when device_type = 'camera' and key_point_id is not null then 1 else 0 end) as keypoint_camera_hours,
        sum(case when device_type = 'camera' and key_point_id is not null and online then 1 else 0 end) as keypoint_camera_online_hours,
        sum(case when device_type = 'fire_sensor' then 1 else 0 end) as fire_sensor_hours,
        sum(case when device_type = 'fire_sensor' and online then 1 else 0 end) as fire_sensor_online_hours
    from {{ ref('fct_device_hours') }}
    group by site_id, hour_month
),

key_points as (
    select
        site_id,
        hour_month as month,
        key_point_id,
        sum(case when online then 1 else 0 end) * 1.0 / count(*) as online_share
    from {{ ref('fct_device_hours') }}
    where device_type = 'camera' and key_point_id is not null
    group by site_id, hour_month, key_point_id
),

key_point_coverage as (
    select
        device_hours.site_id,
        device_hours.month,
        coalesce(sum(case when key_points.online_share >= {{ var('working_camera_min_online_share') }} then 1 else 0 end), 0) as covered_key_points
    from device_hours
    left join key_points on key_points.site_id = device_hours.site_id and key_points.month = device_hours.month
    group by device_hours.site_id, device_hours.month
),

-- management -----------------------------------------------------------------------------
latest_snapshots as (
    select site_id, snapshot_month, max(snapshot_date) as snapshot_date
    from {{ ref('fct_register_snapshots') }}
    group by site_id, snapshot_month
),

register as (
    select
        register.site_id,
        register.snapshot_month as month,
        count(*) as records,
        sum(case when register.is_fresh then 1 else 0 end) as fresh_records
    from {{ ref('fct_register_snapshots') }} as register
    inner join latest_snapshots
        on latest_snapshots.site_id = register.site_id
       and latest_snapshots.snapshot_date = register.snapshot_date
    group by register.site_id, register.snapshot_month
),

alerts as (
    select
        site_id,
        raised_month as month,
        sum(case when is_managed_type then 1 else 0 end) as managed_raised,
        sum(case when is_managed_type and is_closed then 1 else 0 end) as managed_closed,
        sum(case when alert_type = 'tailgating' then 1 else 0 end) as tailgating_alerts,
        sum(case when alert_type = 'fever' then 1 else 0 end) as fever_alerts,
        sum(case when alert_type = 'fever' and minutes_to_acknowledge <= {{ var('fever_followup_minutes') }} then 1 else 0 end) as fever_followed_up
    from {{ ref('fct_alerts') }}
    group by site_id, raised_month
),

deliveries as (
    select
        site_id,
        month,
        sum(case when is_expected then 1 else 0 end) as expected_days,
        sum(case when is_expected and is_delivered then 1 else 0 end) as delivered_days
    from {{ ref('fct_source_days') }}
    group by site_id, month
),

-- convenience (from the hourly rollup: a few rows per site-hour instead of one per passage) --
passages as (
    select
        site_id,
        event_month as month,
        sum(passages) as passages,
        sum(contact_free_passages) as contact_free,
        sum(visitor_entries) as visitor_entries,
        sum(visitor_appointment_entries) as appointed_visitor_entries
    from {{ ref('fct_passage_hours') }}
    group by site_id, event_month
),

cases as (
    select
        site_id,
        applied_month as month,
        count(*) as cases,
        sum(case when is_self_service then 1 else 0 end) as self_service,
        sum(case when is_completed then 1 else 0 end) as completed,
        sum(case when is_completed and is_on_time then 1 else 0 end) as on_time,
        sum(case when rating is not null then 1 else 0 end) as rated,
        sum(case when is_satisfied then 1 else 0 end) as satisfied,
        sum(case when item_group = 'elderly_certificate' and is_completed then 1 else 0 end) as elderly_issued,
        sum(
            case
                when item_group = 'elderly_certificate' and is_completed and channel = 'home_delivery'
                    and hours_taken <= {{ var('elderly_delivery_max_days') }} * 24 then 1 else 0
            end
        ) as elderly_home_delivered
    from {{ ref('fct_service_cases') }}
    group by site_id, applied_month
),

-- distributions: pooled over the district by grouping sets ---------------------------------
completion_days as (
    select
        coalesce(site_id, 'district') as site_id,
        applied_month as month,
        count(*) as completed,
        {{ percentile('working_days_taken', 0.5) }} as median_days
    from {{ ref('fct_service_cases') }}
    where is_completed
    group by grouping sets ((site_id, applied_month), (applied_month))
),

alarm_ack as (
    select
        coalesce(site_id, 'district') as site_id,
        raised_month as month,
        count(*) as acknowledged,
        {{ percentile('minutes_to_acknowledge', 0.9) }} as p90_minutes
    from {{ ref('fct_fire_alarms') }}
    where acknowledged_time is not null
    group by grouping sets ((site_id, raised_month), (raised_month))
),

-- one row per site, month and ratio indicator ------------------------------------------------
site_months as (
    select sites.*, months.month from sites cross join months
),

site_ratios as (
    {%- set ratio_indicators = [
        ('keypoint_camera_coverage', 'key_point_coverage.covered_key_points', 'case when device_hours.site_id is not null then site_months.key_points end'),
        ('camera_online_rate', 'device_hours.camera_online_hours', 'device_hours.camera_hours'),
        ('smart_gate_coverage', 'site_months.smart_gate_entrances', 'site_months.pedestrian_entrances'),
        ('iot_online_rate', 'device_hours.online_hours', 'device_hours.device_hours'),
        ('keypoint_camera_online_rate', 'device_hours.keypoint_camera_online_hours', 'device_hours.keypoint_camera_hours'),
        ('gigabit_household_share', 'site_months.gigabit_household_share * site_months.households', 'site_months.households'),
        ('coverage_5g_area_share', 'site_months.coverage_5g_area_share * site_months.area_m2', 'site_months.area_m2'),
        ('register_freshness', 'register.fresh_records', 'register.records'),
        ('alert_closure_rate', 'alerts.managed_closed', 'alerts.managed_raised'),
        ('data_timeliness', 'deliveries.delivered_days', 'deliveries.expected_days'),
        ('self_service_share', 'cases.self_service', 'cases.cases'),
        ('contact_free_passage_share', 'passages.contact_free', 'passages.passages'),
        ('visitor_qr_share', 'passages.appointed_visitor_entries', 'passages.visitor_entries'),
        ('ontime_completion_rate', 'cases.on_time', 'cases.completed'),
        ('satisfaction_rate', 'cases.satisfied', 'cases.rated'),
        ('elderly_home_delivery_share', 'cases.elderly_home_delivered', 'cases.elderly_issued'),
        ('fire_sensor_online_rate', 'device_hours.fire_sensor_online_hours', 'device_hours.fire_sensor_hours'),
        ('tailgating_per_10k', 'coalesce(alerts.tailgating_alerts, 0)', 'passages.passages'),
        ('fever_followup_rate', 'alerts.fever_followed_up', 'alerts.fever_alerts'),
    ] %}
    {%- for indicator_id, numerator, denominator in ratio_indicators %}
    select
        site_months.site_id,
        site_months.month,
        '{{ indicator_id }}' as indicator_id,
        cast({{ numerator }} as double) as numerator,
        cast({{ denominator }} as double) as denominator
    from site_months
    left join device_hours on device_hours.site_id = site_months.site_id and device_hours.month = site_months.month
    left join key_point_coverage on key_point_coverage.site_id = site_months.site_id and key_point_coverage.month = site_months.month
    left join register on register.site_id = site_months.site_id and register.month = site_months.month
    left join alerts on alerts.site_id = site_months.site_id and alerts.month = site_months.month
    left join deliveries on deliveries.site_id = site_months.site_id and deliveries.month = site_months.month
    left join passages on passages.site_id = site_months.site_id and passages.month = site_months.month
    left join cases on cases.site_id = site_months.site_id and cases.month = site_months.month
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),

district_ratios as (
    select
        'district' as site_id,
        month,
        indicator_id,
        sum(case when denominator > 0 then numerator end) as numerator,
        sum(case when denominator > 0 then denominator end) as denominator
    from site_ratios
    group by month, indicator_id
),

ratios as (
    select site_id, month, indicator_id, numerator, denominator from site_ratios
    union all
    select site_id, month, indicator_id, numerator, denominator from district_ratios
),

all_months as (
    select site_id, month from site_months
    union all
    select 'district' as site_id, month from months
),

distributions as (
    select
        all_months.site_id,
        all_months.month,
        'median_completion_days' as indicator_id,
        cast(null as double) as numerator,
        cast(completion_days.completed as double) as denominator,
        cast(completion_days.median_days as double) as distribution_value
    from all_months
    left join completion_days on completion_days.site_id = all_months.site_id and completion_days.month = all_months.month
    union all
    select
        all_months.site_id,
        all_months.month,
        'alarm_ack_p90_minutes' as indicator_id,
        cast(null as double) as numerator,
        cast(alarm_ack.acknowledged as double) as denominator,
        cast(alarm_ack.p90_minutes as double) as distribution_value
    from all_months
    left join alarm_ack on alarm_ack.site_id = all_months.site_id and alarm_ack.month = all_months.month
),

combined as (
    select
        ratios.site_id,
        ratios.month,
        ratios.indicator_id,
        ratios.numerator,
        ratios.denominator,
        case when ratios.denominator > 0 then ratios.numerator / ratios.denominator * catalog.value_scale end as value
    from ratios
    inner join catalog on catalog.indicator_id = ratios.indicator_id
    union all
    select site_id, month, indicator_id, numerator, denominator, distribution_value as value
    from distributions
),

final as (
    select
        combined.site_id,
        combined.month,
        combined.indicator_id,
        combined.value,
        combined.numerator,
        coalesce(combined.denominator, 0) as denominator,
        combined.value is not null as assessable,
        catalog.source_kinds
    from combined
    inner join catalog on catalog.indicator_id = combined.indicator_id
)

select * from final
