-- vehicles that arrived in the isc_openapi vendor shape (see macros/staging.sql).
{{ stg_landing('vehicles', 'isc_openapi') }}
