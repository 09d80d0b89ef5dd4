-- disclosures that arrived in the manual_xlsx vendor shape (see macros/staging.sql).
{{ stg_landing('disclosures', 'manual_xlsx') }}
