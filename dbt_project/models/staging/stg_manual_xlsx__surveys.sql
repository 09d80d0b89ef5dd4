-- surveys that arrived in the manual_xlsx vendor shape (see macros/staging.sql).
{{ stg_landing('surveys', 'manual_xlsx') }}
