-- Vendor-neutral visitors: every vendor shape's staging model, unioned.
{{ union_staging('visitors') }}
