-- One row per (site, configured kind, local day) of the evaluation period, plus any landed
-- day of a kind the registry does not configure: was it delivered, with how many rows.
-- The evaluation period runs from the first to the last landed day in the landing zone.
with partitions as (
    select site_id, kind, landing_date, sum(rows_landed) as rows_landed, count(*) as files
    from {{ ref('int_landing_partitions') }}
    group by site_id, kind, landing_date
),

period as (
    select min(landing_date) as first_day, max(landing_date) as last_day from partitions
),

days as (
    select calendar.date_day
    from {{ ref('dim_date') }} as calendar
    cross join period
    where calendar.date_day between period.first_day and period.last_day
),

configured as (
    select site_id, kind, source_shape from {{ source('reference', 'site_sources') }}
),

expected as (
    select configured.site_id, configured.kind, configured.source_shape, days.date_day as landing_date
    from configured
    cross join days
),

final as (
    select
        coalesce(expected.site_id, partitions.site_id) as site_id,
        coalesce(expected.kind, partitions.kind) as kind,
        expected.source_shape,
        coalesce(expected.landing_date, partitions.landing_date) as landing_date,
        {{ month_of('coalesce(expected.landing_date, partitions.landing_date)') }} as month,
        expected.site_id is not null as is_expected,
        partitions.site_id is not null as is_delivered,
        cast(coalesce(partitions.rows_landed, 0) as bigint) as rows_landed
    from expected
    full outer join partitions
      on expected.site_id = partitions.site_id
     and expected.kind = partitions.kind
     and expected.landing_date = partitions.landing_date
)

select * from final
