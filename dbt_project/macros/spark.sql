{#
  The `spark` target (dbt-spark over the Spark Thrift server): the Spark versions of the
  dispatched macros. The dispatchers and the DuckDB versions live beside their purpose
  (landing.sql, portable.sql, incremental.sql); only what Spark does differently is here.

  The landing zone on Spark: at the start of every run `register_landing_sources()` (an
  on-run-start hook, a no-op on DuckDB) registers the Parquet files as external tables in
  `<target schema>_landing`: one per kind that has files (schema from the source YAML, the
  site=/date= directories discovered as partition columns), the three reference tables,
  and `landing_files`, the landing zone's file list (path, modificationTime, length). So
  `source('landing', kind)` is an ordinary table on Spark and the external_location of the
  source YAML (DuckDB's read_parquet) is not used. Nothing is written to the landing zone.

  The file list is listed once per run (a `binaryFile` scan, contents never read) and kept
  as a small Parquet table: every later question about it (files per kind at compile time,
  `landing_partition_files`) reads that table instead of listing the landing zone again,
  which at a district-month is ~75,000 files and at a pilot-year ~40,000 per listing.
#}

{#- A YAML data type (DuckDB spelling) in Spark's: Spark has no bare `varchar`. -#}
{% macro column_type(data_type) -%}
  {{ return(adapter.dispatch('column_type')(data_type)) }}
{%- endmacro %}

{% macro default__column_type(data_type) -%}
  {{ return(data_type) }}
{%- endmacro %}

{% macro spark__column_type(data_type) -%}
  {%- set spelled = {'varchar': 'string', 'text': 'string'} -%}
  {{ return(spelled.get(data_type | lower | trim, data_type)) }}
{%- endmacro %}


{#- dbt's cast, used by model contracts (`cast(null as <declared type>)`). -#}
{% macro spark__cast(field, type) -%}
  cast({{ field }} as {{ column_type(type) }})
{%- endmacro %}


{#- dbt-spark turns ANSI mode off, so a plain cast already yields NULL on a bad value. -#}
{% macro spark__safe_cast(field, type) -%}
  cast({{ field }} as {{ column_type(type) }})
{%- endmacro %}


{% macro register_landing_sources() -%}
  {{ return(adapter.dispatch('register_landing_sources')()) }}
{%- endmacro %}

{% macro default__register_landing_sources() -%}
  {{ return('') }}
{%- endmacro %}

{% macro spark__register_landing_sources() -%}
  {%- if execute -%}
    {%- if not (landing_root().startswith('/') or '://' in landing_root()) -%}
      {{ exceptions.raise_compiler_error("SMARTCOMM_DATA_DIR must be an absolute path or a URI on Spark (the Thrift server resolves paths, not dbt): " ~ landing_root()) }}
    {%- endif -%}
    {%- set files = landing_files_relation() -%}
    {%- do run_query('create schema if not exists ' ~ files.schema) -%}
    {%- do run_query('drop table if exists ' ~ files) -%}
    {#- a session view over the listing, materialized once: the hook runs on one connection -#}
    {%- do run_query("create or replace temporary view landing_files_listing using binaryFile options (path '"
        ~ landing_root() ~ "', recursiveFileLookup 'true', pathGlobFilter '*.parquet')") -%}
    {%- do run_query('create table ' ~ files ~ ' using parquet as select path, modificationTime, length'
        ~ ' from landing_files_listing') -%}
    {%- do run_query('drop view if exists landing_files_listing') -%}
    {%- set kinds_with_files = {} -%}
    {%- set counted = run_query("select regexp_extract(path, '/([^/]+)/site=[^/]+/date=[^/]+/[^/]+$', 1) as kind,"
        ~ " count(*) as files from " ~ files ~ " group by 1") -%}
    {%- for row in counted.rows -%}
      {%- do kinds_with_files.update({row[0]: row[1]}) -%}
    {%- endfor -%}
    {%- for node in graph.sources.values() if node.source_name in ('landing', 'reference') -%}
      {%- set relation = api.Relation.create(schema=node.schema, identifier=node.identifier) -%}
      {%- do run_query('drop table if exists ' ~ relation) -%}
      {%- if node.source_name == 'reference' -%}
        {%- do run_query("create table " ~ relation ~ " using parquet location '"
            ~ landing_root() ~ "/_reference/" ~ node.identifier ~ ".parquet'") -%}
      {%- elif kinds_with_files.get(node.identifier, 0) > 0 -%}
        {%- set columns = [] -%}
        {%- for column in node.columns.values() -%}
          {%- do columns.append(adapter.quote(column.name) ~ ' ' ~ column_type(column.data_type)) -%}
        {%- endfor -%}
        {%- do run_query('create table ' ~ relation ~ ' (' ~ columns | join(', ') ~ ") using parquet location '"
            ~ landing_root() ~ '/' ~ node.identifier ~ "'") -%}
      {%- endif -%}
    {%- endfor -%}
  {%- endif -%}
  {{ return('') }}
{%- endmacro %}


{#- The landing zone's file list (path, modificationTime, length; content is never read). -#}
{% macro landing_files_relation() -%}
  {%- set landing = (graph.sources.values() | selectattr('source_name', 'equalto', 'landing') | first) if execute else none -%}
  {{ return(api.Relation.create(schema=landing.schema if landing else target.schema ~ '_landing', identifier='landing_files')) }}
{%- endmacro %}


{% macro spark__landing_file_count(kind) -%}
  {%- set sql -%}
    select count(*) from {{ landing_files_relation() }} where path like '%/{{ kind }}/site=%'
  {%- endset -%}
  {{ return(run_query(sql).columns[0].values()[0]) }}
{%- endmacro %}


{#- Same columns as duckdb__landing_partition_files. Spark cannot read a Parquet footer
    from SQL: the rows of each file are counted from the registered tables (an empty
    file, a delivery without rows, is in the file list with 0 rows). -#}
{% macro spark__landing_partition_files(days=none) -%}
  {%- set path_regex = '/([^/]+)/site=([^/]+)/date=([0-9-]+)/[^/]+$' -%}
  {%- set kinds = [] -%}
  {%- if execute -%}
    {%- for node in graph.sources.values() if node.source_name == 'landing' -%}
      {%- if adapter.get_relation(database=none, schema=node.schema, identifier=node.identifier) -%}
        {%- do kinds.append(api.Relation.create(schema=node.schema, identifier=node.identifier)) -%}
      {%- endif -%}
    {%- endfor -%}
  {%- endif -%}
  {%- set day_filter = ('in (' ~ landing_day_literals(days) ~ ')') if days is not none else none -%}
  (with files as (
      select
          regexp_extract(path, '{{ path_regex }}', 1) as kind,
          regexp_extract(path, '{{ path_regex }}', 2) as site_id,
          cast(regexp_extract(path, '{{ path_regex }}', 3) as date) as landing_date,
          path as file_path
      from {{ landing_files_relation() }}
      where path rlike '{{ path_regex }}'
  ),
  counted as (
      {%- for relation in kinds %}
      select _metadata.file_path as file_path, count(*) as rows_landed
      from {{ relation }}
      {%- if day_filter %} where `date` {{ day_filter }}{% endif %}
      group by _metadata.file_path
      {{- '\n      union all' if not loop.last }}
      {%- else %}
      select cast(null as string) as file_path, cast(null as bigint) as rows_landed where 1 = 0
      {%- endfor %}
  )
  select files.kind, files.site_id, files.landing_date, files.file_path,
         cast(coalesce(counted.rows_landed, 0) as bigint) as rows_landed
  from files
  left join counted on counted.file_path = files.file_path
  {%- if day_filter %}
  where files.landing_date {{ day_filter }}
  {%- endif %})
{%- endmacro %}
