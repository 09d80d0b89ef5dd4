-- activities that arrived in the token_rest vendor shape (see macros/staging.sql).
{{ stg_landing('activities', 'token_rest') }}
