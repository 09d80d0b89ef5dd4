-- register that arrived in the manual_xlsx vendor shape (see macros/staging.sql).
{{ stg_landing('register', 'manual_xlsx') }}
