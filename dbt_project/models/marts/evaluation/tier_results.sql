-- Tier frameworks: per site, month and tier, how many rows pass; a tier is achieved when
-- all its rows and every lower tier's rows pass.
with checks as (
    select * from {{ ref('tier_checks') }}
),

per_tier as (
    select
        site_id,
        month,
        framework_id,
        framework_version,
        tier_id,
        tier_rank,
        cast(count(*) as bigint) as rows_required,
        cast(sum(case when passed then 1 else 0 end) as bigint) as rows_passed,
        {{ dbt.listagg("case when not passed then indicator_id end", "','", "order by indicator_id") }} as failed_indicators
    from checks
    group by site_id, month, framework_id, framework_version, tier_id, tier_rank
),

final as (
    select
        site_id,
        month,
        framework_id,
        framework_version,
        tier_id,
        tier_rank,
        rows_required,
        rows_passed,
        rows_passed = rows_required as tier_passed,
        min(case when rows_passed = rows_required then 1 else 0 end) over (
            partition by site_id, month, framework_id order by tier_rank rows between unbounded preceding and current row
        ) = 1 as tier_achieved,
        failed_indicators
    from per_tier
)

select * from final
