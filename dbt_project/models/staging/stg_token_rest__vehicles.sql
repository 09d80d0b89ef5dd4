-- vehicles that arrived in the token_rest vendor shape (see macros/staging.sql).
{{ stg_landing('vehicles', 'token_rest') }}
