-- For every site, month and star framework below 5 stars: each indicator's next star, the
-- value it must reach and the total-score points reaching it would add, ranked so the first
-- rows are what lifts the rating soonest (gate blockers first when the gate caps the band).
with ratings as (
    select * from {{ ref('star_ratings') }} where stars < 5
),

indicator_scores as (
    select * from {{ ref('indicator_scores') }} where indicator_stars < 5
),

rules as (
    select * from {{ ref('framework_rules') }} where is_active and mode = 'stars'
),

candidates as (
    select
        ratings.site_id,
        ratings.month,
        ratings.framework_id,
        ratings.stars as current_stars,
        ratings.stars + 1 as target_stars,
        ratings.total_score,
        ratings.gate_capped,
        ratings.capped_by,
        greatest(0.0,
            case ratings.stars + 1
                when 2 then rules.band_2 when 3 then rules.band_3 when 4 then rules.band_4 else rules.band_5
            end - ratings.total_score) as points_to_next_band,
        indicator_scores.indicator_id,
        indicator_scores.dimension_id,
        indicator_scores.assessable,
        indicator_scores.value as current_value,
        indicator_scores.indicator_stars as current_indicator_stars,
        indicator_scores.indicator_stars + 1 as target_indicator_stars,
        indicator_scores.next_star_threshold as value_needed,
        (20.0 * (indicator_scores.indicator_stars + 1) - coalesce(indicator_scores.score, 0.0))
            * indicator_scores.effective_weight * (1.0 - ratings.survey_share) as points_gained,
        indicator_scores.indicator_stars < ratings.stars + 1
            or (indicator_scores.is_core and indicator_scores.indicator_stars < ratings.stars + 1 - rules.gate_core_margin) as is_gate_blocker
    from ratings
    inner join rules
        on rules.framework_id = ratings.framework_id
       and rules.framework_version = ratings.framework_version
    inner join indicator_scores
        on indicator_scores.site_id = ratings.site_id
       and indicator_scores.month = ratings.month
       and indicator_scores.framework_id = ratings.framework_id
),

final as (
    select
        site_id,
        month,
        framework_id,
        current_stars,
        target_stars,
        total_score,
        points_to_next_band,
        gate_capped,
        capped_by,
        indicator_id,
        dimension_id,
        assessable,
        current_value,
        current_indicator_stars,
        target_indicator_stars,
        value_needed,
        points_gained,
        points_gained >= points_to_next_band as closes_band_gap,
        is_gate_blocker,
        cast(row_number() over (
            partition by site_id, month, framework_id
            order by case when gate_capped and is_gate_blocker then 0 else 1 end, points_gained desc, indicator_id
        ) as integer) as gap_rank
    from candidates
)

select * from final
