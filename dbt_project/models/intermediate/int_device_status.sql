-- Vendor-neutral device_status: every vendor shape's staging model, unioned.
{{ union_staging('device_status') }}
