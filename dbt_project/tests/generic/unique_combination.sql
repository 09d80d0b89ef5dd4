{#- Rows of `model` whose combination of `columns` appears more than once (the grain).
    Grouping by the columns is much cheaper than testing a concatenated string. When the
    run rebuilt only some days of a landing-day fact (macros/incremental.sql), only the keys
    of those days are counted, but over the whole table: a rebuilt row that duplicates an
    older one still fails. -#}
{% test unique_combination(model, columns) %}
{%- set days = rebuilt_landing_days(model) -%}
select {% for column in columns %}tested.{{ column }}, {% endfor %}count(*) as occurrences
from (select * from {{ model }}) as tested
{%- if days | length > 0 %}
where exists (
    select 1 from (select * from {{ model }}) as rebuilt
    where rebuilt.landing_date in ({{ landing_day_literals(days) }})
    {%- for column in columns %}
      and rebuilt.{{ column }} = tested.{{ column }}
    {%- endfor %}
)
{%- endif %}
group by {% for column in columns %}tested.{{ column }}{{ ', ' if not loop.last }}{% endfor %}
having count(*) > 1
{% endtest %}
