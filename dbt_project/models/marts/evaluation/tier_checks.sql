-- Tier frameworks (Shandong 2022 basic/growing/benchmark): one pass/fail row per site,
-- month, tier and required indicator.
with rules as (
    select * from {{ ref('framework_rules') }} where is_active and mode = 'tiers'
),

requirements as (
    select requirements.*
    from {{ ref('framework_tier_thresholds') }} as requirements
    inner join rules
        on rules.framework_id = requirements.framework_id
       and rules.framework_version = requirements.framework_version
),

indicator_values as (
    select * from {{ ref('indicator_values') }}
),

final as (
    select
        indicator_values.site_id,
        indicator_values.month,
        requirements.framework_id,
        requirements.framework_version,
        requirements.tier_id,
        requirements.tier_rank,
        requirements.indicator_id,
        indicator_values.value,
        requirements.threshold,
        catalog.direction,
        indicator_values.assessable,
        coalesce(indicator_values.assessable and {{ meets('indicator_values.value', 'requirements.threshold', 'catalog.direction') }}, false) as passed,
        requirements.is_official
    from requirements
    inner join {{ ref('indicator_catalog') }} as catalog on catalog.indicator_id = requirements.indicator_id
    inner join indicator_values on indicator_values.indicator_id = requirements.indicator_id
)

select * from final
