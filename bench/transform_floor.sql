-- The transform floor: one hand-written DuckDB query over the landed Parquet computing the
-- monthly counts and durations the evaluation marts need, per site and local month (the
-- numerators and denominators of indicator_values, the medians and percentiles, the survey
-- mean, delivered source-days). No dbt, no intermediate tables, no tests: what DuckDB alone
-- needs to read and aggregate the same inputs. {landing} is the landing zone's folder.
with
device_hours as (
    select
        site_id,
        date_trunc('month', hour_start) as month,
        count(*) as device_hours,
        count(*) filter (where online) as online_hours,
        count(*) filter (where device_type = 'camera') as camera_hours,
        count(*) filter (where device_type = 'camera' and online) as camera_online_hours,
        count(*) filter (where device_type = 'camera' and key_point_id is not null) as keypoint_camera_hours,
        count(*) filter (where device_type = 'camera' and key_point_id is not null and online) as keypoint_online_hours,
        count(*) filter (where device_type = 'fire_sensor') as fire_sensor_hours,
        count(*) filter (where device_type = 'fire_sensor' and online) as fire_sensor_online_hours
    from read_parquet('{landing}/device_status/*/*/*.parquet')
    group by all
),

key_points as (
    select site_id, month, count(*) filter (where online_share >= 0.5) as covered_key_points
    from (
        select
            site_id,
            date_trunc('month', hour_start) as month,
            key_point_id,
            avg(case when online then 1.0 else 0.0 end) as online_share
        from read_parquet('{landing}/device_status/*/*/*.parquet')
        where device_type = 'camera' and key_point_id is not null
        group by all
    )
    group by all
),

register as (
    select
        site_id,
        date_trunc('month', snapshot_date) as month,
        count(*) as records,
        count(*) filter (where snapshot_date - last_verified_date <= 30) as fresh_records
    from (
        select site_id, snapshot_date, last_verified_date
        from read_parquet('{landing}/register/*/*/*.parquet')
        qualify snapshot_date = max(snapshot_date) over (partition by site_id, date_trunc('month', snapshot_date))
    )
    group by all
),

alerts as (
    select
        site_id,
        date_trunc('month', raised_time) as month,
        count(*) filter (where alert_type in ('tailgating', 'fever', 'abnormal_behaviour')) as managed_raised,
        count(*) filter (
            where alert_type in ('tailgating', 'fever', 'abnormal_behaviour') and closed_time is not null
        ) as managed_closed,
        count(*) filter (where alert_type = 'tailgating') as tailgating_alerts,
        count(*) filter (where alert_type = 'fever') as fever_alerts,
        count(*) filter (
            where alert_type = 'fever' and date_diff('second', raised_time, acknowledged_time) / 60.0 <= 30
        ) as fever_followed_up
    from read_parquet('{landing}/alerts/*/*/*.parquet')
    group by all
),

passages as (
    select
        site_id,
        date_trunc('month', event_time) as month,
        count(*) as passages,
        count(*) filter (where method in ('face', 'qr_visitor')) as contact_free,
        count(*) filter (where person_type = 'visitor' and direction = 'in') as visitor_entries,
        count(*) filter (
            where person_type = 'visitor' and direction = 'in' and appointment_id is not null
        ) as appointed_visitor_entries
    from read_parquet('{landing}/passages/*/*/*.parquet')
    group by all
),

calendar as (
    select
        cast(day as date) as day,
        sum(case when isodow(day) <= 5 then 1 else 0 end) over (order by day) as workday_index
    from range(date '2024-01-01', date '2028-01-01', interval 1 day) as days (day)
),

cases as (
    select
        cases.site_id,
        date_trunc('month', cases.applied_time) as month,
        cases.channel,
        cases.completed_time,
        cases.rating,
        cases.item_code,
        completed.workday_index - applied.workday_index as working_days,
        date_diff('second', cases.applied_time, cases.completed_time) / 3600.0 as hours_taken,
        cases.promised_days
    from read_parquet('{landing}/service_cases/*/*/*.parquet') as cases
    left join calendar as applied on applied.day = cast(cases.applied_time as date)
    left join calendar as completed on completed.day = cast(cases.completed_time as date)
),

case_counts as (
    select
        coalesce(site_id, 'district') as site_id,
        month,
        count(*) as cases,
        count(*) filter (where channel in ('terminal', 'online')) as self_service,
        count(*) filter (where completed_time is not null) as completed,
        count(*) filter (where completed_time is not null and working_days <= promised_days) as on_time,
        count(*) filter (where rating is not null) as rated,
        count(*) filter (where rating >= 4) as satisfied,
        count(*) filter (where item_code = '370214000001' and completed_time is not null) as elderly_issued,
        count(*) filter (
            where item_code = '370214000001' and completed_time is not null
            and channel = 'home_delivery' and hours_taken <= 72
        ) as elderly_home_delivered,
        median(working_days) filter (where completed_time is not null) as median_working_days
    from cases
    group by grouping sets ((site_id, month), (month))
),

alarm_ack as (
    select
        coalesce(site_id, 'district') as site_id,
        date_trunc('month', raised_time) as month,
        count(*) as acknowledged,
        quantile_cont(date_diff('second', raised_time, acknowledged_time) / 60.0, 0.9) as p90_minutes
    from read_parquet('{landing}/fire_alarms/*/*/*.parquet')
    where acknowledged_time is not null
    group by grouping sets ((site_id, date_trunc('month', raised_time)), (date_trunc('month', raised_time)))
),

surveys as (
    select site_id, date_trunc('month', answered_date) as month, count(*) as answers, sum(score) as score_sum
    from read_parquet('{landing}/surveys/*/*/*.parquet')
    group by all
),

survey_scores as (
    select
        coalesce(months.site_id, 'district') as site_id,
        months.month,
        100.0 * (sum(surveys.score_sum) / sum(surveys.answers) - 1.0) / 4.0 as survey_score
    from (select distinct site_id, month from surveys) as months
    inner join surveys
        on surveys.site_id = months.site_id
       and surveys.month between months.month - interval 2 month and months.month
    group by grouping sets ((months.site_id, months.month), (months.month))
),

deliveries as (
    select
        regexp_extract(file, '/site=([^/]+)/', 1) as site_id,
        date_trunc('month', cast(regexp_extract(file, '/date=([0-9-]+)/', 1) as date)) as month,
        count(distinct regexp_extract(file, '/([^/]+)/site=[^/]+/date=([0-9-]+)/', ['kind', 'day'])) as delivered_days
    from glob('{landing}/*/site=*/date=*/*.parquet')
    group by all
),

monthly as (
    select *
    from device_hours
    full join key_points using (site_id, month)
    full join register using (site_id, month)
    full join alerts using (site_id, month)
    full join passages using (site_id, month)
    full join case_counts using (site_id, month)
    full join alarm_ack using (site_id, month)
    full join survey_scores using (site_id, month)
    full join deliveries using (site_id, month)
)

select * from monthly
