-- Vendor-neutral register: every vendor shape's staging model, unioned.
{{ union_staging('register') }}
