-- device_status that arrived in the token_rest vendor shape (see macros/staging.sql).
{{ stg_landing('device_status', 'token_rest') }}
