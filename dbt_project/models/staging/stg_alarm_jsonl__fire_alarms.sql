-- fire_alarms that arrived in the alarm_jsonl vendor shape (see macros/staging.sql).
{{ stg_landing('fire_alarms', 'alarm_jsonl') }}
