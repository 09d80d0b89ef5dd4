-- One row per (active star framework, weighted indicator): thresholds, direction, core flag,
-- the indicator's weight within its dimension and its share of the objective total.
with rules as (
    select * from {{ ref('framework_rules') }} where is_active and mode = 'stars'
),

indicator_weights as (
    select framework_id, framework_version, item_id as indicator_id, dimension_id, weight
    from {{ ref('framework_weights') }}
    where weight_of = 'indicator' and weight > 0
),

dimension_weights as (
    select framework_id, framework_version, item_id as dimension_id, weight
    from {{ ref('framework_weights') }}
    where weight_of = 'dimension' and weight > 0
),

dimension_totals as (
    select framework_id, framework_version, dimension_id, sum(weight) as indicator_weight_total
    from indicator_weights
    group by framework_id, framework_version, dimension_id
),

framework_totals as (
    select framework_id, framework_version, sum(weight) as dimension_weight_total
    from dimension_weights
    group by framework_id, framework_version
),

final as (
    select
        rules.framework_id,
        rules.framework_version,
        rules.score_method,
        rules.not_assessable_policy,
        indicator_weights.indicator_id,
        indicator_weights.dimension_id,
        catalog.direction,
        catalog.is_core,
        thresholds.star_1,
        thresholds.star_2,
        thresholds.star_3,
        thresholds.star_4,
        thresholds.star_5,
        thresholds.zero_at,
        indicator_weights.weight / dimension_totals.indicator_weight_total as weight_in_dimension,
        dimension_weights.weight / framework_totals.dimension_weight_total as dimension_weight,
        indicator_weights.weight / dimension_totals.indicator_weight_total
            * dimension_weights.weight / framework_totals.dimension_weight_total as effective_weight
    from rules
    inner join indicator_weights
        on indicator_weights.framework_id = rules.framework_id
       and indicator_weights.framework_version = rules.framework_version
    inner join dimension_weights
        on dimension_weights.framework_id = rules.framework_id
       and dimension_weights.framework_version = rules.framework_version
       and dimension_weights.dimension_id = indicator_weights.dimension_id
    inner join dimension_totals
        on dimension_totals.framework_id = rules.framework_id
       and dimension_totals.framework_version = rules.framework_version
       and dimension_totals.dimension_id = indicator_weights.dimension_id
    inner join framework_totals
        on framework_totals.framework_id = rules.framework_id
       and framework_totals.framework_version = rules.framework_version
    inner join {{ ref('indicator_catalog') }} as catalog
        on catalog.indicator_id = indicator_weights.indicator_id
    inner join {{ ref('framework_thresholds') }} as thresholds
        on thresholds.framework_id = rules.framework_id
       and thresholds.framework_version = rules.framework_version
       and thresholds.indicator_id = indicator_weights.indicator_id
)

select * from final
