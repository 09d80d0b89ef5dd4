-- The district per month and star framework: the pooled rating (indicators over all sites'
-- pooled numerators and denominators, scored the same way) beside the site average.
with ratings as (
    select * from {{ ref('star_ratings') }}
),

rules as (
    select * from {{ ref('framework_rules') }} where is_active and mode = 'stars'
),

pooled as (
    select * from ratings where site_id = 'district'
),

site_average as (
    select
        month,
        framework_id,
        cast(count(*) as bigint) as site_count,
        avg(total_score) as site_average_total_score,
        avg(cast(stars as double)) as site_average_stars,
        cast(sum(case when stars >= 4 then 1 else 0 end) as bigint) as sites_at_4_stars_or_more
    from ratings
    where site_id <> 'district'
    group by month, framework_id
),

final as (
    select
        pooled.month,
        pooled.framework_id,
        pooled.framework_version,
        pooled.objective_score as pooled_objective_score,
        pooled.total_score as pooled_total_score,
        pooled.band_stars as pooled_band_stars,
        pooled.gate_capped as pooled_gate_capped,
        pooled.stars as pooled_stars,
        pooled.coverage as pooled_coverage,
        site_average.site_count,
        site_average.site_average_total_score,
        {{ band_stars('site_average.site_average_total_score', 'rules.') }} as site_average_band_stars,
        site_average.site_average_stars,
        site_average.sites_at_4_stars_or_more
    from pooled
    inner join site_average
        on site_average.month = pooled.month
       and site_average.framework_id = pooled.framework_id
    inner join rules
        on rules.framework_id = pooled.framework_id
       and rules.framework_version = pooled.framework_version
)

select * from final
