-- alerts that arrived in the token_rest vendor shape (see macros/staging.sql).
{{ stg_landing('alerts', 'token_rest') }}
