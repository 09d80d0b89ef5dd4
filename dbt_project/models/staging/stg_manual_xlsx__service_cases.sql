-- service_cases that arrived in the manual_xlsx vendor shape (see macros/staging.sql).
{{ stg_landing('service_cases', 'manual_xlsx') }}
