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
