{#
  Incremental facts are rebuilt by whole local days (the landing partition day). DuckDB
  deletes the days of the new batch and inserts them again (delete+insert); an engine
  with partition overwrite (Spark) overwrites the day partitions. Either way a re-landed
  day replaces its old rows and a re-run never duplicates.
#}

{% macro landing_day_fact_config() -%}
  {%- if target.type == 'duckdb' -%}
    {{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='landing_date', on_schema_change='fail') }}
  {%- else -%}
    {{ config(materialized='incremental', incremental_strategy='insert_overwrite', partition_by=['landing_date'], on_schema_change='fail') }}
  {%- endif -%}
{%- endmacro %}


{#- `where landing_date in (...)` for an incremental run: the days in var('landing_days'),
    else the days whose (site, day, run) is in `upstream` but not yet in this model. The
    list is inlined as constants so the engine prunes landing partitions by day. -#}
{% macro landing_day_filter(upstream) -%}
  {%- if is_incremental() -%}
    where landing_date in ({{ changed_landing_days(upstream) }})
  {%- endif -%}
{%- endmacro %}


{% macro changed_landing_days(upstream) -%}
  {%- set requested = var('landing_days', []) -%}
  {%- if requested is string -%}{%- set requested = requested.split(',') if requested else [] -%}{%- endif -%}
  {%- if requested | length > 0 -%}
    {%- set days = requested -%}
  {%- elif execute -%}
    {%- set sql -%}
      with landed as (
          select distinct site_id, landing_date, _run_id from {{ upstream }}
      ),
      loaded as (
          select distinct site_id, landing_date, _run_id from {{ this }}
      )
      select distinct cast(landed.landing_date as {{ dbt.type_string() }}) as day
      from landed
      left join loaded
        on landed.site_id = loaded.site_id
       and landed.landing_date = loaded.landing_date
       and landed._run_id = loaded._run_id
      where loaded._run_id is null
      order by 1
    {%- endset -%}
    {%- set days = run_query(sql).columns[0].values() -%}
  {%- else -%}
    {%- set days = [] -%}
  {%- endif -%}
  {%- if days | length == 0 -%}
    cast(null as date)
  {%- else -%}
    {%- for day in days -%}
      cast('{{ day | trim }}' as date){{ ', ' if not loop.last }}
    {%- endfor -%}
  {%- endif -%}
{%- endmacro %}
