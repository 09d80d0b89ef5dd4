-- Vendor-neutral activities: every vendor shape's staging model, unioned.
{{ union_staging('activities') }}
