-- alerts that arrived in the alarm_jsonl vendor shape (see macros/staging.sql).
{{ stg_landing('alerts', 'alarm_jsonl') }}
