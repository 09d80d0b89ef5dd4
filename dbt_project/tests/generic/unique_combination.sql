{#- Rows of `model` whose combination of `columns` appears more than once (the grain).
    Grouping by the columns is much cheaper than testing a concatenated string. -#}
{% test unique_combination(model, columns) %}
select {{ columns | join(', ') }}, count(*) as occurrences
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
