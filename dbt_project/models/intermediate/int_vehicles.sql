-- Vendor-neutral vehicles: every vendor shape's staging model, unioned.
{{ union_staging('vehicles') }}
