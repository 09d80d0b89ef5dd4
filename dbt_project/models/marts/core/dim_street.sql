-- Sub-districts (街道) from the pilot registry.
with streets as (
    select * from {{ source('reference', 'streets') }}
),

final as (
    select
        street_id,
        name_zh,
        name_en,
        district_id,
        district_name_zh,
        district_name_en,
        city_zh
    from streets
)

select * from final
