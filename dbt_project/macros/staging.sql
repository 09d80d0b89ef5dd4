{#
  stg_<shape>__<kind>: the rows of one kind that arrived in one vendor shape.

  Ingestion already maps vendor names, codes and time formats to the landing contract
  (config/kinds.yml), so a staging model only selects its shape, re-asserts the contract
  types (a file of another contract version, read with union_by_name, can widen a column), names the partition
  day and turns the UTC fetch instant into local time. Shape-specific cleanup goes in the
  `extra_columns` hook of the model file, nowhere else.
#}
{% macro stg_landing(kind, shape) -%}
with landed as (
    select * from {{ landing_source(kind) }}
),

typed as (
    select
    {%- for column in landing_contract_columns(kind) %}
        {{ dbt.safe_cast(adapter.quote(column.name), column.data_type) }} as {{ column.name }},
    {%- endfor %}
        site_id,
        _run_id,
        _source_shape as source_shape,
        _source_record_id as source_record_id,
        _fetched_at_utc as fetched_at_utc,
        {{ utc_to_local('_fetched_at_utc') }} as fetched_at_local,
        {{ adapter.quote('date') }} as landing_date
    from landed
    where _source_shape = '{{ shape }}'
)

select * from typed
{%- endmacro %}


{#- The contract columns of a kind (without metadata and partition columns), in YAML order. -#}
{% macro landing_contract_columns(kind) -%}
  {%- set skip = ['site_id', '_run_id', '_source_shape', '_source_record_id', '_fetched_at_utc', 'site', 'date'] -%}
  {%- set columns = [] -%}
  {%- set node = (graph.sources.values() | selectattr('source_name', 'equalto', 'landing') | selectattr('name', 'equalto', kind) | first) if execute else none -%}
  {%- if node -%}
    {%- for column in node.columns.values() if column.name not in skip -%}
      {%- do columns.append(column) -%}
    {%- endfor -%}
  {%- endif -%}
  {{ return(columns) }}
{%- endmacro %}


{#- int_<kind>: the vendor-neutral union of every shape's staging model. -#}
{% macro union_staging(kind) -%}
{%- for shape in var('staging_shapes')[kind] %}
select * from {{ ref('stg_' ~ shape ~ '__' ~ kind) }}
{%- if not loop.last %}
union all
{%- endif %}
{%- endfor %}
{%- endmacro %}
