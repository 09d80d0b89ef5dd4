-- The indicator catalogue with its dimension's names.
with catalog as (
    select * from {{ ref('indicator_catalog') }}
),

dimensions as (
    select * from {{ ref('dimensions') }}
),

final as (
    select
        catalog.indicator_id,
        catalog.name_zh,
        catalog.name_en,
        catalog.dimension_id,
        dimensions.name_zh as dimension_name_zh,
        dimensions.name_en as dimension_name_en,
        dimensions.sort_order as dimension_sort_order,
        catalog.direction,
        catalog.unit,
        catalog.value_scale,
        catalog.is_core,
        catalog.is_default,
        catalog.source_kinds,
        catalog.definition_en,
        catalog.definition_zh
    from catalog
    inner join dimensions on dimensions.dimension_id = catalog.dimension_id
)

select * from final
