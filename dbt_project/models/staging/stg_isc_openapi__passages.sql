-- passages that arrived in the isc_openapi vendor shape (see macros/staging.sql).
{{ stg_landing('passages', 'isc_openapi') }}
