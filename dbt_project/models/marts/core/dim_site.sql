-- Pilot sites from the registry, plus the pooled district as a site ('district').
with sites as (
    select * from {{ source('reference', 'sites') }}
),

streets as (
    select * from {{ source('reference', 'streets') }}
),

site_rows as (
    select
        sites.site_id,
        sites.name_zh,
        sites.name_en,
        sites.street_id,
        streets.name_zh as street_name_zh,
        sites.site_kind,
        sites.is_sample,
        false as is_district,
        sites.residents,
        sites.households,
        sites.area_m2,
        sites.pedestrian_entrances,
        sites.smart_gate_entrances,
        sites.vehicle_entrances,
        sites.key_points,
        sites.cameras,
        sites.fire_sensors,
        sites.iot_devices,
        sites.gigabit_household_share,
        sites.coverage_5g_area_share,
        sites.configured_kinds
    from sites
    left join streets on sites.street_id = streets.street_id
),

district_row as (
    select
        'district' as site_id,
        max(streets.district_name_zh) as name_zh,
        max(streets.district_name_en) as name_en,
        cast(null as {{ dbt.type_string() }}) as street_id,
        cast(null as {{ dbt.type_string() }}) as street_name_zh,
        'district' as site_kind,
        false as is_sample,
        true as is_district,
        (select cast(sum(residents) as bigint) from sites) as residents,
        (select cast(sum(households) as bigint) from sites) as households,
        (select sum(area_m2) from sites) as area_m2,
        (select cast(sum(pedestrian_entrances) as bigint) from sites) as pedestrian_entrances,
        (select cast(sum(smart_gate_entrances) as bigint) from sites) as smart_gate_entrances,
        (select cast(sum(vehicle_entrances) as bigint) from sites) as vehicle_entrances,
        (select cast(sum(key_points) as bigint) from sites) as key_points,
        (select cast(sum(cameras) as bigint) from sites) as cameras,
        (select cast(sum(fire_sensors) as bigint) from sites) as fire_sensors,
        (select cast(sum(iot_devices) as bigint) from sites) as iot_devices,
        (select sum(gigabit_household_share * households) / sum(households) from sites) as gigabit_household_share,
        (select sum(coverage_5g_area_share * area_m2) / sum(area_m2) from sites) as coverage_5g_area_share,
        (select cast(sum(configured_kinds) as bigint) from sites) as configured_kinds
    from streets
),

final as (
    select * from site_rows
    union all
    select * from district_row
)

select * from final
