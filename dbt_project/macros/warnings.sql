{#- Helpers of the early-warning models (models/warnings/). -#}

{#- A value for the explanation text: a share as a whole percent, a count with at most one decimal. -#}
{% macro warning_value(column, noise_column) -%}
  case
    when {{ noise_column }} = 'share' then cast(cast(round(100 * {{ column }}, 0) as integer) as {{ dbt.type_string() }}) || '%'
    else cast(round({{ column }}, 1) as {{ dbt.type_string() }})
  end
{%- endmacro %}


{#- 'YYYY-MM-DD HH:MM' of a timestamp, for the explanation text. -#}
{% macro warning_time(column) -%}
  substring(cast({{ column }} as {{ dbt.type_string() }}), 1, 16)
{%- endmacro %}


{#- Noise scale of a baseline: the MAD scaled to a standard deviation, but never below the
    detector's floor (Poisson: sqrt of the expected count; share: a fixed floor). -#}
{% macro warning_sigma(mad, expected, noise, sigma_floor) -%}
  greatest(
    1.4826 * {{ mad }},
    case when {{ noise }} = 'poisson' then sqrt(greatest({{ expected }}, {{ sigma_floor }})) else {{ sigma_floor }} end
  )
{%- endmacro %}


{#- Two CTEs over `history` (one row per key and past value): `medians` (baseline_weeks,
    expected = median) and `deviations` (mad = median absolute deviation from it). -#}
{% macro median_and_mad(history, keys, value='past_value') -%}
medians as (
    select
        {% for key in keys %}{{ key }}, {% endfor %}
        count(*) as baseline_weeks,
        {{ percentile(value, 0.5) }} as expected
    from {{ history }}
    group by {{ keys | join(', ') }}
),

deviations as (
    select
        {% for key in keys %}{{ history }}.{{ key }}, {% endfor %}
        {{ percentile('abs(' ~ history ~ '.' ~ value ~ ' - medians.expected)', 0.5) }} as mad
    from {{ history }}
    inner join medians
        on {% for key in keys %}{{ history }}.{{ key }} = medians.{{ key }}{{ ' and ' if not loop.last }}{% endfor %}
    group by {% for key in keys %}{{ history }}.{{ key }}{{ ', ' if not loop.last }}{% endfor %}
)
{%- endmacro %}


{#- The local days an incremental run of the warning series and baselines rebuilds, from the
    landing days it names (var landing_days), as a dict of day lists:
      series          the named days and the next ceil(longest detector window / 24 h) days,
                      whose trailing windows reach back into a named day;
      series_inputs   the series days and the days their windows look back to;
      baselines       the series days and the same weekday 1..warning_baseline_weeks weeks on,
                      whose medians read a changed day;
      baseline_inputs the baseline days and the weeks their medians look back to.
    None (every day) for a full build and for a run that names no days. -#}
{% macro warning_rebuild_days() -%}
  {%- set named = incremental_landing_days() -%}
  {%- if named is none -%}{{ return(none) }}{%- endif -%}
  {%- set longest = run_query('select max(window_hours) from ' ~ ref('warning_detectors')).columns[0].values()[0] -%}
  {%- set reach = ((longest | int) + 23) // 24 -%}
  {%- set weeks = var('warning_baseline_weeks') | int -%}
  {%- set series = shift_days(named, range(0, reach + 1)) -%}
  {%- set baselines = shift_days(series, range(0, 7 * weeks + 1, 7)) -%}
  {{ return({
      'series': series,
      'series_inputs': shift_days(series, range(-reach, 1)),
      'baselines': baselines,
      'baseline_inputs': shift_days(baselines, range(-7 * weeks, 1, 7)),
  }) }}
{%- endmacro %}


{#- Every day of `days` ('YYYY-MM-DD') moved by every offset (days), sorted, without repeats. -#}
{% macro shift_days(days, offsets) -%}
  {%- set shifted = [] -%}
  {%- for day in days -%}
    {%- set start = modules.datetime.date.fromisoformat(day | string) -%}
    {%- for offset in offsets -%}
      {%- set value = (start + modules.datetime.timedelta(days=offset)).isoformat() -%}
      {%- if value not in shifted -%}{%- do shifted.append(value) -%}{%- endif -%}
    {%- endfor -%}
  {%- endfor -%}
  {{ return(shifted | sort) }}
{%- endmacro %}
