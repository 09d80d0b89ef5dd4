{#- Cross-database helpers. dbt's own macros are used where they exist; these fill gaps. -#}

{#- dbt.safe_cast has no DuckDB version (it would be a plain cast): use try_cast. -#}
{% macro duckdb__safe_cast(field, type) -%}
  try_cast({{ field }} as {{ type }})
{%- endmacro %}


{#- A naive UTC timestamp as naive local time. Asia/Shanghai has no DST, so a fixed
    offset is exact and portable (no time-zone database needed on the engine). -#}
{% macro utc_to_local(column) -%}
  ({{ column }} + interval '{{ var("local_utc_offset_hours") }}' hour)
{%- endmacro %}


{#- First day of the local month of a timestamp or date, as a DATE. -#}
{% macro month_of(column) -%}
  cast({{ dbt.date_trunc('month', column) }} as date)
{%- endmacro %}


{#- Minutes between two timestamps, fractional (seconds kept). A double: dividing by a
    decimal literal (60.0) gives DECIMAL on Spark, DOUBLE on DuckDB. -#}
{% macro minutes_between(start_column, end_column) -%}
  (cast({{ dbt.datediff(start_column, end_column, 'second') }} as double) / 60)
{%- endmacro %}


{#- Continuous percentile (linear interpolation, as numpy's default). -#}
{% macro percentile(column, fraction) -%}
  percentile_cont({{ fraction }}) within group (order by {{ column }})
{%- endmacro %}


{#- ISO day of week, Monday = 1 .. Sunday = 7. -#}
{% macro iso_day_of_week(column) -%}
  {{ return(adapter.dispatch('iso_day_of_week')(column)) }}
{%- endmacro %}

{% macro default__iso_day_of_week(column) -%}
  extract(isodow from {{ column }})
{%- endmacro %}

{% macro spark__iso_day_of_week(column) -%}
  extract(dayofweek_iso from {{ column }})
{%- endmacro %}
