-- Vendor-neutral alerts: every vendor shape's staging model, unioned.
{{ union_staging('alerts') }}
