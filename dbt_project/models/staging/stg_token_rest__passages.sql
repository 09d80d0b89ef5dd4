-- passages that arrived in the token_rest vendor shape (see macros/staging.sql).
{{ stg_landing('passages', 'token_rest') }}
