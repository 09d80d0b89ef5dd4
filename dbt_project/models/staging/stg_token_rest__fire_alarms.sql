-- fire_alarms that arrived in the token_rest vendor shape (see macros/staging.sql).
{{ stg_landing('fire_alarms', 'token_rest') }}
