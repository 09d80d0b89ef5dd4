-- The five dimension scores: weighted mean of the dimension's indicator scores.
with indicator_scores as (
    select * from {{ ref('indicator_scores') }}
),

final as (
    select
        site_id,
        month,
        framework_id,
        framework_version,
        dimension_id,
        sum(score * weight_in_dimension) / nullif(sum(case when score is not null then weight_in_dimension end), 0) as score,
        max(dimension_weight) as dimension_weight,
        cast(count(*) as bigint) as indicator_count,
        cast(sum(case when assessable then 1 else 0 end) as bigint) as assessable_count,
        sum(case when assessable then weight_in_dimension else 0 end) as coverage
    from indicator_scores
    group by site_id, month, framework_id, framework_version, dimension_id
)

select * from final
