{#- Scoring helpers: the rule lives in the seeds, the arithmetic here. -#}

{#- Does `value` reach `threshold` in the indicator's direction? -#}
{% macro meets(value, threshold, direction) -%}
  (case when {{ direction }} = 'lower_better' then {{ value }} <= {{ threshold }} else {{ value }} >= {{ threshold }} end)
{%- endmacro %}


{#- Indicator stars 0..5: the highest star whose threshold the value reaches. -#}
{% macro indicator_stars(value, direction, prefix='') -%}
  (case
    when {{ value }} is null then 0
    {%- for star in [5, 4, 3, 2, 1] %}
    when {{ meets(value, prefix ~ 'star_' ~ star, direction) }} then {{ star }}
    {%- endfor %}
    else 0
  end)
{%- endmacro %}


{#- The threshold of star `stars_expr` (1..5), null otherwise. -#}
{% macro threshold_of(stars_expr, prefix='') -%}
  (case {{ stars_expr }}
    {%- for star in [1, 2, 3, 4, 5] %} when {{ star }} then {{ prefix }}star_{{ star }}{% endfor %}
  end)
{%- endmacro %}


{#- Star-anchored score 0..100: k stars = 20k points, linear between thresholds, falling
    linearly to 0 at zero_at below one star; `step` scoring keeps 20k without interpolation. -#}
{% macro star_anchored_score(value, stars, direction, score_method, prefix='') -%}
  (case
    when {{ value }} is null then null
    when {{ stars }} >= 5 then 100.0
    when {{ score_method }} = 'step' then 20.0 * {{ stars }}
    when {{ stars }} = 0 then
      case
        when {{ prefix }}star_1 = {{ prefix }}zero_at then 0.0
        else 20.0 * greatest(0.0, least(1.0, ({{ value }} - {{ prefix }}zero_at) / ({{ prefix }}star_1 - {{ prefix }}zero_at)))
      end
    when {{ threshold_of(stars ~ ' + 1', prefix) }} = {{ threshold_of(stars, prefix) }} then 20.0 * {{ stars }}
    else 20.0 * {{ stars }} + 20.0 * least(1.0, greatest(0.0,
      ({{ value }} - {{ threshold_of(stars, prefix) }}) / ({{ threshold_of(stars ~ ' + 1', prefix) }} - {{ threshold_of(stars, prefix) }})))
  end)
{%- endmacro %}


{#- Star band of a total score under a framework's bands. -#}
{% macro band_stars(total, prefix='') -%}
  (case
    when {{ total }} >= {{ prefix }}band_5 then 5
    when {{ total }} >= {{ prefix }}band_4 then 4
    when {{ total }} >= {{ prefix }}band_3 then 3
    when {{ total }} >= {{ prefix }}band_2 then 2
    else 1
  end)
{%- endmacro %}
