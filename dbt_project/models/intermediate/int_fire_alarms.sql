-- Vendor-neutral fire_alarms: every vendor shape's staging model, unioned.
{{ union_staging('fire_alarms') }}
