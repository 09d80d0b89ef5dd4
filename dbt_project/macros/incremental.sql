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


{#- The local days the run names (a list or 'YYYY-MM-DD,...'): var('landing_days'), else
    $SMARTCOMM_LANDING_DAYS (what dbt_project.run passes: an environment value read only
    while executing does not make dbt re-parse the project); [] if none. -#}
{% macro requested_landing_days() -%}
  {%- if not execute -%}{{ return([]) }}{%- endif -%}
  {%- set requested = var('landing_days', []) or env_var('SMARTCOMM_LANDING_DAYS', '') -%}
  {%- if requested is string -%}{%- set requested = requested.split(',') if requested else [] -%}{%- endif -%}
  {{ return(requested | map('trim') | reject('equalto', '') | list) }}
{%- endmacro %}


{#- The days an incremental run of this model names (requested_landing_days), or none when
    the model is built whole (first build, --full-refresh) or the run names no days. -#}
{% macro incremental_landing_days() -%}
  {%- if not execute or not is_incremental() -%}{{ return(none) }}{%- endif -%}
  {%- set days = requested_landing_days() -%}
  {{ return(days if days | length > 0 else none) }}
{%- endmacro %}


{#- `column in (days)` as a condition, always true when days is none (every day). -#}
{% macro in_days(column, days) -%}
  {%- if days is none -%}1 = 1{%- else -%}{{ column }} in ({{ landing_day_literals(days) }}){%- endif -%}
{%- endmacro %}


{#- `cast('d1' as date), ...` for an `in (...)` list (a never-true null for no days). -#}
{% macro landing_day_literals(days) -%}
  {%- if days | length == 0 -%}
    cast(null as date)
  {%- else -%}
    {%- for day in days -%}
      cast('{{ day | trim }}' as date){{ ', ' if not loop.last }}
    {%- endfor -%}
  {%- endif -%}
{%- endmacro %}


{% macro changed_landing_days(upstream) -%}
  {%- set requested = requested_landing_days() -%}
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
  {{- landing_day_literals(days) -}}
{%- endmacro %}


{#-
  Data tests on a landing-day fact (an incremental model keyed by landing_date) check only
  the days the run rebuilt when it names them (var('landing_days'), the pipeline's daily
  run): the other days were tested when they were built and have not changed. A full build,
  --full-refresh or a run that detects its days itself tests every row. The grain test
  `unique_combination` checks the rebuilt days' keys against the whole table instead.
-#}
{% macro rebuilt_landing_days(relation) -%}
  {%- set days = requested_landing_days() -%}
  {%- if not execute or flags.FULL_REFRESH or days | length == 0 or relation is string -%}
    {{ return([]) }}
  {%- endif -%}
  {%- set node = graph.nodes.values()
      | selectattr('resource_type', 'equalto', 'model')
      | selectattr('alias', 'equalto', relation.identifier)
      | selectattr('schema', 'equalto', relation.schema)
      | first -%}
  {%- if node and node.config.materialized == 'incremental'
        and (node.config.unique_key == 'landing_date' or 'landing_date' in (node.config.partition_by or [])) -%}
    {{ return(days) }}
  {%- endif -%}
  {{ return([]) }}
{%- endmacro %}


{#- dbt's hook for a data test's `where` config, extended with the rebuilt-days scope above. -#}
{% macro default__get_where_subquery(relation) -%}
  {%- set where = config.get('where', '') -%}
  {%- set test_name = (model.get('test_metadata') or {}).get('name') -%}
  {%- set days = rebuilt_landing_days(relation) if test_name != 'unique_combination' else [] -%}
  {%- set conditions = [] -%}
  {%- if where -%}{%- do conditions.append('(' ~ where ~ ')') -%}{%- endif -%}
  {%- if days | length > 0 -%}{%- do conditions.append(in_days('landing_date', days)) -%}{%- endif -%}
  {%- if conditions -%}
    {%- do return('(select * from ' ~ relation ~ ' where ' ~ conditions | join(' and ') ~ ') dbt_subquery') -%}
  {%- endif -%}
  {%- do return(relation) -%}
{%- endmacro %}
