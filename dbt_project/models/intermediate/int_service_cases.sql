-- Vendor-neutral service_cases: every vendor shape's staging model, unioned.
{{ union_staging('service_cases') }}
