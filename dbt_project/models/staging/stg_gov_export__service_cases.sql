-- service_cases that arrived in the gov_export vendor shape (see macros/staging.sql).
{{ stg_landing('service_cases', 'gov_export') }}
