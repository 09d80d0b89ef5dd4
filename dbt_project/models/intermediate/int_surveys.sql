-- Vendor-neutral surveys: every vendor shape's staging model, unioned.
{{ union_staging('surveys') }}
