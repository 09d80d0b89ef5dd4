-- The rating of every site (and the pooled district) per month and active star framework:
-- objective score, survey, bonus and deductions, total, star band, the gate rule and stars.
with indicator_scores as (
    select * from {{ ref('indicator_scores') }}
),

dimension_scores as (
    select * from {{ ref('dimension_scores') }}
),

rules as (
    select * from {{ ref('framework_rules') }} where is_active and mode = 'stars'
),

surveys as (
    select * from {{ ref('int_survey_scores') }}
),

adjustments as (
    select * from {{ ref('score_adjustments') }}
),

objective as (
    select
        site_id,
        month,
        framework_id,
        framework_version,
        sum(score * dimension_weight) / nullif(sum(case when score is not null then dimension_weight end), 0) as objective_score
    from dimension_scores
    group by site_id, month, framework_id, framework_version
),

evidence as (
    select
        indicator_scores.site_id,
        indicator_scores.month,
        indicator_scores.framework_id,
        indicator_scores.framework_version,
        sum(case when indicator_scores.assessable then indicator_scores.effective_weight else 0 end) / sum(indicator_scores.effective_weight) as coverage,
        cast(sum(case when indicator_scores.assessable then 0 else 1 end) as bigint) as not_assessable_count,
        {%- for star in [2, 3, 4, 5] %}
        sum(case when indicator_scores.indicator_stars >= {{ star }} then indicator_scores.effective_weight else 0 end)
            / nullif(sum(case when indicator_scores.assessable or rules.not_assessable_policy = 'zero' then indicator_scores.effective_weight end), 0)
            as weight_share_at_{{ star }},
        coalesce(min(case when indicator_scores.is_core then indicator_scores.indicator_stars end), 5) - {{ star }} + max(rules.gate_core_margin) >= 0 as core_ok_{{ star }}{{ ',' if not loop.last }}
        {%- endfor %}
    from indicator_scores
    inner join rules
        on rules.framework_id = indicator_scores.framework_id
       and rules.framework_version = indicator_scores.framework_version
    group by indicator_scores.site_id, indicator_scores.month, indicator_scores.framework_id, indicator_scores.framework_version
),

site_adjustments as (
    select
        evidence.site_id,
        evidence.month,
        evidence.framework_id,
        sum(case when adjustments.adjustment = 'bonus' then adjustments.points else 0 end) as bonus_points,
        sum(case when adjustments.adjustment = 'deduction' then adjustments.points else 0 end) as deduction_points
    from evidence
    inner join adjustments
        on adjustments.site_id = evidence.site_id
       and (adjustments.month is null or adjustments.month = evidence.month)
       and (adjustments.framework_id is null or adjustments.framework_id = evidence.framework_id)
    group by evidence.site_id, evidence.month, evidence.framework_id
),

totals as (
    select
        evidence.*,
        rules.survey_share as configured_survey_share,
        rules.bonus_cap,
        rules.band_2,
        rules.band_3,
        rules.band_4,
        rules.band_5,
        rules.gate_enabled,
        rules.gate_weight_share,
        coalesce(objective.objective_score, 0.0) as objective_score,
        surveys.survey_score,
        case when surveys.survey_score is null then 0.0 else rules.survey_share end as survey_share,
        least(coalesce(site_adjustments.bonus_points, 0.0), rules.bonus_cap) as bonus,
        coalesce(site_adjustments.deduction_points, 0.0) as deductions
    from evidence
    inner join rules
        on rules.framework_id = evidence.framework_id
       and rules.framework_version = evidence.framework_version
    left join objective
        on objective.site_id = evidence.site_id
       and objective.month = evidence.month
       and objective.framework_id = evidence.framework_id
    left join surveys
        on surveys.site_id = evidence.site_id
       and surveys.month = evidence.month
    left join site_adjustments
        on site_adjustments.site_id = evidence.site_id
       and site_adjustments.month = evidence.month
       and site_adjustments.framework_id = evidence.framework_id
),

scored as (
    select
        *,
        (1.0 - survey_share) * objective_score + survey_share * coalesce(survey_score, 0.0) + bonus - deductions as total_score
    from totals
),

gated as (
    select
        *,
        {{ band_stars('total_score') }} as band_stars,
        case
            {%- for star in [5, 4, 3, 2] %}
            when weight_share_at_{{ star }} >= gate_weight_share and core_ok_{{ star }} then {{ star }}
            {%- endfor %}
            else 1
        end as gate_stars
    from scored
),

final as (
    select
        site_id,
        month,
        framework_id,
        framework_version,
        objective_score,
        survey_score,
        survey_share,
        bonus,
        deductions,
        total_score,
        band_stars,
        gate_stars,
        gate_enabled and gate_stars < band_stars as gate_capped,
        case
            when not gate_enabled or gate_stars >= band_stars then cast(null as {{ dbt.type_string() }})
            {%- for star in [2, 3, 4, 5] %}
            when gate_stars = {{ star - 1 }} then
                case
                    when weight_share_at_{{ star }} < gate_weight_share and not core_ok_{{ star }} then 'weight_share_and_core'
                    when weight_share_at_{{ star }} < gate_weight_share then 'weight_share'
                    else 'core_indicator'
                end
            {%- endfor %}
        end as capped_by,
        case when gate_enabled and gate_stars < band_stars then gate_stars else band_stars end as stars,
        coverage,
        not_assessable_count
    from gated
)

select * from final
