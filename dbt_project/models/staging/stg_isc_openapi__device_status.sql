-- device_status that arrived in the isc_openapi vendor shape (see macros/staging.sql).
{{ stg_landing('device_status', 'isc_openapi') }}
