-- One row per landed partition file of a source kind (the landing zone's file list).
-- depends_on: {{ source('reference', 'site_sources') }}
select * from {{ landing_partition_files() }}
where kind not like '\_%' escape '\'
