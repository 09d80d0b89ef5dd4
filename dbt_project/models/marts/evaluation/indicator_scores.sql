-- Score 0-100 and indicator stars 0-5 of every weighted indicator, per site (and the
-- district), month and active star framework.
with indicator_values as (
    select * from {{ ref('indicator_values') }}
),

framework_indicators as (
    select * from {{ ref('int_framework_indicators') }}
),

joined as (
    select
        indicator_values.site_id,
        indicator_values.month,
        framework_indicators.framework_id,
        framework_indicators.framework_version,
        framework_indicators.indicator_id,
        framework_indicators.dimension_id,
        framework_indicators.direction,
        framework_indicators.is_core,
        framework_indicators.score_method,
        framework_indicators.not_assessable_policy,
        indicator_values.value,
        indicator_values.assessable,
        framework_indicators.star_1,
        framework_indicators.star_2,
        framework_indicators.star_3,
        framework_indicators.star_4,
        framework_indicators.star_5,
        framework_indicators.zero_at,
        framework_indicators.weight_in_dimension,
        framework_indicators.dimension_weight,
        framework_indicators.effective_weight
    from indicator_values
    inner join framework_indicators on framework_indicators.indicator_id = indicator_values.indicator_id
),

starred as (
    select
        *,
        case when assessable then {{ indicator_stars('value', 'direction') }} else 0 end as indicator_stars
    from joined
),

final as (
    select
        site_id,
        month,
        framework_id,
        framework_version,
        indicator_id,
        dimension_id,
        value,
        assessable,
        is_core,
        indicator_stars,
        case
            when assessable then {{ star_anchored_score('value', 'indicator_stars', 'direction', 'score_method') }}
            when not_assessable_policy = 'zero' then 0.0
        end as score,
        weight_in_dimension,
        dimension_weight,
        effective_weight,
        {{ threshold_of('indicator_stars + 1') }} as next_star_threshold
    from starred
)

select * from final
