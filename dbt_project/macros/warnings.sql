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
