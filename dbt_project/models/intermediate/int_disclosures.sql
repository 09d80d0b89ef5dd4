-- Vendor-neutral disclosures: every vendor shape's staging model, unioned.
{{ union_staging('disclosures') }}
