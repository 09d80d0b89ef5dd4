-- One row per landed partition file of a source kind (the landing zone's file list). A
-- table, incremental by local day like the facts: a daily run reads only the footers of
-- the days it names (var landing_days); otherwise every footer is read again.
-- depends_on: {{ source('reference', 'site_sources') }}
{{ landing_day_fact_config() }}

{%- set days = incremental_landing_days() %}

select * from {{ landing_partition_files(days) }}
where substring(kind, 1, 1) <> '_'
