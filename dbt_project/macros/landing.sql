{#
  The landing zone as dbt relations. Every DuckDB-specific way of reading the Parquet
  files lives here, dispatched per adapter, so a later target (Spark) only adds its own
  `<adapter>__` versions.
#}

{% macro landing_root() -%}
  {{ env_var('SMARTCOMM_DATA_DIR', 'data') }}/landing
{%- endmacro %}


{#- The landed rows of one kind: the `landing` source when files exist, else an empty
    relation typed from the source's declared columns, so a fresh landing zone builds. -#}
{% macro landing_source(kind) -%}
  {%- set relation = source('landing', kind) -%}
  {%- if execute and landing_file_count(kind) == 0 -%}
    {{ empty_source_relation('landing', kind) }}
  {%- else -%}
    {{ relation }}
  {%- endif -%}
{%- endmacro %}


{% macro landing_file_count(kind) -%}
  {{ return(adapter.dispatch('landing_file_count')(kind)) }}
{%- endmacro %}

{% macro duckdb__landing_file_count(kind) -%}
  {%- set sql -%}
    select count(*) from glob('{{ landing_root() }}/{{ kind }}/*/*/*.parquet')
  {%- endset -%}
  {{ return(run_query(sql).columns[0].values()[0]) }}
{%- endmacro %}


{#- `(select cast(null as <type>) as <column>, ... where 1 = 0)` from a source's YAML columns. -#}
{% macro empty_source_relation(source_name, table_name) -%}
  {%- set node = graph.sources.values() | selectattr('source_name', 'equalto', source_name) | selectattr('name', 'equalto', table_name) | first -%}
  (select
  {%- for column in node.columns.values() %}
    {{ dbt.cast('null', column.data_type) }} as {{ adapter.quote(column.name) }}{{ ',' if not loop.last }}
  {%- endfor %}
  where 1 = 0)
{%- endmacro %}


{#- One row per landed partition file: kind, site_id, landing_date, file_path, rows_landed
    (from the Parquet footer, no data read). The data-timeliness indicator counts these:
    an empty file still proves the source-day was delivered. `days`: only the files of
    those local days (an incremental run); none: every file. -#}
{% macro landing_partition_files(days=none) -%}
  {{ return(adapter.dispatch('landing_partition_files')(days)) }}
{%- endmacro %}

{% macro duckdb__landing_partition_files(days=none) -%}
  {%- set root = landing_root() -%}
  {%- set patterns = [root ~ '/*/site=*/date=*/*.parquet'] if days is none else [] -%}
  {%- for day in days or [] -%}
    {%- do patterns.append(root ~ '/*/site=*/date=' ~ (day | trim) ~ '/*.parquet') -%}
  {%- endfor -%}
  {%- set path_regex = '/([^/]+)/site=([^/]+)/date=([0-9-]+)/[^/]+$' -%}
  {%- set found = [] -%}
  {%- if execute -%}
    {%- for pattern in patterns -%}
      {%- if run_query("select count(*) from glob('" ~ pattern ~ "')").columns[0].values()[0] > 0 -%}
        {%- do found.append("'" ~ pattern ~ "'") -%}
      {%- endif -%}
    {%- endfor -%}
  {%- endif -%}
  {%- if found | length == 0 -%}
    (select cast(null as varchar) as kind, cast(null as varchar) as site_id, cast(null as date) as landing_date,
            cast(null as varchar) as file_path, cast(null as bigint) as rows_landed where 1 = 0)
  {%- else -%}
    (select
        regexp_extract(file_name, '{{ path_regex }}', 1) as kind,
        regexp_extract(file_name, '{{ path_regex }}', 2) as site_id,
        cast(regexp_extract(file_name, '{{ path_regex }}', 3) as date) as landing_date,
        file_name as file_path,
        cast(num_rows as bigint) as rows_landed
     from parquet_file_metadata([{{ found | join(', ') }}]))
  {%- endif -%}
{%- endmacro %}
