-- Every signal the detectors watch, one row per (site, signal, series, local hour or day),
-- zero-filled over the days the source was delivered (a day that never arrived is missing,
-- not zero). `window_observed` sums the trailing `window_hours` of the detector's signal (from
-- the local midnight on, for a `window_within_day` detector: entries of the night so far).
-- Incremental by local day (landing_date = the day of hour_start): a run that names its landing
-- days rebuilds those and the days whose windows reach back into them (macros/warnings.sql).
{{ landing_day_fact_config() }}
{%- set days = warning_rebuild_days() %}
{%- set series_days = days.series if days else none %}
{%- set input_days = days.series_inputs if days else none %}

with delivered as (
    select site_id, kind, landing_date
    from {{ ref('fct_source_days') }}
    where is_delivered and {{ in_days('landing_date', input_days) }}
),

hours as (
    select generated_number - 1 as hour_of_day
    from ({{ dbt.generate_series(24) }}) as hour_numbers
),

day_hours as (
    select
        delivered.site_id,
        delivered.kind,
        {{ dbt.dateadd('hour', 'hours.hour_of_day', 'cast(delivered.landing_date as timestamp)') }} as hour_start
    from delivered
    cross join hours
),

gate_hours as (
    select
        site_id,
        gate_id,
        hour_start,
        sum(passages) as passages,
        sum(tailgating_passages) as tailgating_passages,
        sum(visitor_unknown_entries) as visitor_unknown_entries,
        sum(fever_passages) as fever_passages
    from {{ ref('int_warning_gate_hours') }}
    where {{ in_days('landing_date', input_days) }}
    group by site_id, gate_id, hour_start
),

-- every gate the site ever reported, so a gate silent on the rebuilt days still gets its zeros
gates as (
    select distinct site_id, gate_id from {{ ref('int_warning_gate_hours') }}
),

gate_series as (
    select
        day_hours.site_id,
        gates.gate_id as series_key,
        day_hours.hour_start,
        coalesce(gate_hours.passages, 0) as passages,
        coalesce(gate_hours.visitor_unknown_entries, 0) as visitor_unknown_entries
    from day_hours
    inner join gates on day_hours.site_id = gates.site_id
    left join gate_hours
        on day_hours.site_id = gate_hours.site_id
        and gates.gate_id = gate_hours.gate_id
        and day_hours.hour_start = gate_hours.hour_start
    where day_hours.kind = 'passages'
),

site_gate_hours as (
    select
        site_id,
        hour_start,
        sum(tailgating_passages) as tailgating_passages,
        sum(fever_passages) as fever_passages
    from gate_hours
    group by site_id, hour_start
),

alert_hours as (
    select site_id, hour_start, sum(fever_alerts) as fever_alerts, sum(tailgating_alerts) as tailgating_alerts
    from {{ ref('int_warning_alert_hours') }}
    where {{ in_days('landing_date', input_days) }}
    group by site_id, hour_start
),

-- gates and alerts tell the same story (tailgating, fever): a site-hour counts when either was delivered
gate_or_alert_hours as (
    select distinct site_id, hour_start
    from day_hours
    where kind in ('passages', 'alerts')
),

gate_alert_series as (
    select
        spine.site_id,
        spine.hour_start,
        coalesce(site_gate_hours.tailgating_passages, 0) + coalesce(alert_hours.tailgating_alerts, 0) as tailgating_events,
        coalesce(site_gate_hours.fever_passages, 0) + coalesce(alert_hours.fever_alerts, 0) as fever_events
    from gate_or_alert_hours as spine
    left join site_gate_hours
        on spine.site_id = site_gate_hours.site_id and spine.hour_start = site_gate_hours.hour_start
    left join alert_hours
        on spine.site_id = alert_hours.site_id and spine.hour_start = alert_hours.hour_start
),

alarm_hours as (
    select site_id, hour_start, sum(fire_alarms) as fire_alarms
    from {{ ref('int_warning_alarm_hours') }}
    where {{ in_days('landing_date', input_days) }}
    group by site_id, hour_start
),

alarm_series as (
    select day_hours.site_id, day_hours.hour_start, coalesce(alarm_hours.fire_alarms, 0) as fire_alarms
    from day_hours
    left join alarm_hours
        on day_hours.site_id = alarm_hours.site_id and day_hours.hour_start = alarm_hours.hour_start
    where day_hours.kind = 'fire_alarms'
),

device_series as (
    select site_id, device_type as series_key, hour_start, sum(devices) - sum(devices_online) as devices_offline
    from {{ ref('int_warning_device_hours') }}
    where {{ in_days('landing_date', input_days) }}
    group by site_id, device_type, hour_start
),

-- cases whose promised working days ran out on that day while still open (到期未办结): each
-- case counts once, on the working day its deadline passed, so the signal has no memory and
-- one backlog does not inflate the baseline of the weeks after it
case_days as (
    select site_id, landing_date as day
    from delivered
    where kind = 'service_cases'
),

calendar as (
    select date_day, workday_index, is_workday from {{ ref('dim_date') }}
),

cases as (
    select
        cases.site_id,
        cases.completed_date,
        applied.workday_index + cases.promised_days + 1 as overdue_workday
    from {{ ref('fct_service_cases') }} as cases
    inner join calendar as applied on applied.date_day = cases.applied_date
    where cases.promised_days is not null
),

stale_counts as (
    select cases.site_id, calendar.date_day as day, count(*) as stale_cases
    from cases
    inner join calendar on calendar.workday_index = cases.overdue_workday and calendar.is_workday
    where (cases.completed_date is null or cases.completed_date > calendar.date_day)
        and {{ in_days('calendar.date_day', input_days) }}
    group by cases.site_id, calendar.date_day
),

case_series as (
    select
        case_days.site_id,
        cast(case_days.day as timestamp) as hour_start,
        coalesce(stale_counts.stale_cases, 0) as stale_cases
    from case_days
    left join stale_counts on case_days.site_id = stale_counts.site_id and case_days.day = stale_counts.day
),

unioned as (
    select site_id, 'gate_passages' as signal, series_key, hour_start, 1 as step_hours, cast(passages as double) as observed
    from gate_series
    union all
    select site_id, 'gate_passages_3h', series_key, hour_start, 1, cast(passages as double)
    from gate_series
    union all
    select site_id, 'gate_night_entries', series_key, hour_start, 1, cast(visitor_unknown_entries as double)
    from gate_series
    union all
    select site_id, 'site_tailgating', 'site', hour_start, 1, cast(tailgating_events as double)
    from gate_alert_series
    union all
    select site_id, 'site_fever', 'site', hour_start, 1, cast(fever_events as double)
    from gate_alert_series
    union all
    select site_id, 'site_fire_alarms', 'site', hour_start, 1, cast(fire_alarms as double)
    from alarm_series
    union all
    select site_id, 'device_offline', series_key, hour_start, 1, cast(devices_offline as double)
    from device_series
    union all
    select site_id, 'site_stale_cases', 'site', hour_start, 24, cast(stale_cases as double)
    from case_series
),

windows as (
    select signal, max(window_hours) as window_hours, max(case when window_within_day then 1 else 0 end) as within_day
    from {{ ref('warning_detectors') }}
    group by signal
),

single_hour as (
    select unioned.*, unioned.observed as window_observed
    from unioned
    left join windows on unioned.signal = windows.signal
    where coalesce(windows.window_hours, 1) <= 1
        and {{ in_days('cast(unioned.hour_start as date)', series_days) }}
),

rolled as (
    select
        current_unit.site_id,
        current_unit.signal,
        current_unit.series_key,
        current_unit.hour_start,
        current_unit.step_hours,
        current_unit.observed,
        sum(earlier_unit.observed) as window_observed
    from unioned as current_unit
    inner join windows on current_unit.signal = windows.signal and windows.window_hours > 1
    inner join unioned as earlier_unit
        on current_unit.site_id = earlier_unit.site_id
        and current_unit.signal = earlier_unit.signal
        and current_unit.series_key = earlier_unit.series_key
        and earlier_unit.hour_start <= current_unit.hour_start
        and earlier_unit.hour_start > {{ dbt.dateadd('hour', '-windows.window_hours', 'current_unit.hour_start') }}
        and (windows.within_day = 0 or cast(earlier_unit.hour_start as date) = cast(current_unit.hour_start as date))
    where {{ in_days('cast(current_unit.hour_start as date)', series_days) }}
    group by
        current_unit.site_id,
        current_unit.signal,
        current_unit.series_key,
        current_unit.hour_start,
        current_unit.step_hours,
        current_unit.observed
),

windowed as (
    select site_id, signal, series_key, hour_start, step_hours, observed, window_observed from single_hour
    union all
    select site_id, signal, series_key, hour_start, step_hours, observed, window_observed from rolled
),

final as (
    select windowed.*, cast(hour_start as date) as landing_date from windowed
)

select * from final
