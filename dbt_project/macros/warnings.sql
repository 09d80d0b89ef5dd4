{#- Helpers of the early-warning models (models/warnings/). -#}

{#- A count for the explanation text, with at most one decimal. -#}
{% macro warning_value(column) -%}
  cast(round({{ column }}, 1) as {{ dbt.type_string() }})
{%- endmacro %}


{#- 'YYYY-MM-DD HH:MM' of a timestamp, for the explanation text. -#}
{% macro warning_time(column) -%}
  substring(cast({{ column }} as {{ dbt.type_string() }}), 1, 16)
{%- endmacro %}


{#- How far in the tail of a quasi-Poisson count the observed value lies, as a standard normal
    z: the chance of `observed` or more ('high'; or less, 'low') when `expected` is the mean and
    the variance is `dispersion` x the mean is about Phi(-z). Wilson-Hilferty's cube-root
    approximation of the Poisson tail (P(X >= x) = P(chi2 with 2x df <= 2 mean)), on the counts
    divided by the dispersion; 0 on the other side of the expected. -#}
{% macro count_tail_z(observed, expected, dispersion, direction) -%}
  case
    when {{ direction }} = 'high' and {{ observed }} > {{ expected }} then
      3 * sqrt({{ observed }} / {{ dispersion }})
        * (1 - {{ dispersion }} / (9 * {{ observed }}) - power({{ expected }} / {{ observed }}, 1.0 / 3))
    when {{ direction }} = 'low' and {{ observed }} < {{ expected }} then
      3 * sqrt({{ observed }} / {{ dispersion }} + 1)
        * (power(({{ expected }} / {{ dispersion }}) / ({{ observed }} / {{ dispersion }} + 1), 1.0 / 3)
           - 1 + 1 / (9 * ({{ observed }} / {{ dispersion }} + 1)))
    else 0
  end
{%- endmacro %}


{#- The count at which count_tail_z reaches `z` (the inverse of its Wilson-Hilferty line), for
    the threshold line of the observed-vs-expected chart. -#}
{% macro count_threshold(expected, dispersion, z, direction) -%}
  {%- set reach = z ~ ' / (3 * sqrt(' ~ expected ~ ' / ' ~ dispersion ~ '))' -%}
  {%- set bias = dispersion ~ ' / (9 * ' ~ expected ~ ')' -%}
  case
    when {{ direction }} = 'high' then {{ expected }} * power(1 - {{ bias }} + {{ reach }}, 3)
    else greatest({{ expected }} * power(greatest(1 - {{ bias }} - {{ reach }}, 0), 3) - {{ dispersion }}, 0)
  end
{%- endmacro %}


{#- The standard normal z whose upper tail is `p` (0 < p < 0.5): Abramowitz & Stegun 26.2.23,
    error below 4.5e-4. -#}
{% macro normal_upper_quantile(p) -%}
  {%- set t = 'sqrt(-2 * ln(' ~ p ~ '))' -%}
  ({{ t }} - (2.515517 + 0.802853 * {{ t }} + 0.010328 * power({{ t }}, 2))
    / (1 + 1.432788 * {{ t }} + 0.189269 * power({{ t }}, 2) + 0.001308 * power({{ t }}, 3)))
{%- endmacro %}


{#- log10 of the standard normal upper tail Phi(-z), z >= 0, without underflow for large z:
    Boerjesson & Sundberg's approximation phi(z) / (0.226 + 0.64 z + 0.33 sqrt(z^2 + 3)),
    within about 1 %. -#}
{% macro normal_upper_tail_log10(z) -%}
  ((-0.5 * {{ z }} * {{ z }} - 0.918939 - ln(0.226 + 0.64 * {{ z }} + 0.33 * sqrt({{ z }} * {{ z }} + 3))) / ln(10))
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
