-- Evaluation frameworks and their rules (one row per framework version).
with rules as (
    select * from {{ ref('framework_rules') }}
),

final as (
    select
        framework_id,
        framework_version,
        name_zh,
        name_en,
        mode,
        score_method,
        survey_share,
        bonus_cap,
        band_2,
        band_3,
        band_4,
        band_5,
        gate_enabled,
        gate_weight_share,
        gate_core_margin,
        not_assessable_policy,
        weights_status,
        is_active,
        description,
        '{{ var("standard_model_version") }}' as standard_model_version
    from rules
)

select * from final
