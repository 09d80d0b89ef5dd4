-- Vendor-neutral passages: every vendor shape's staging model, unioned.
{{ union_staging('passages') }}
