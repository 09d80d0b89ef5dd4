-- Resident survey score 0-100 per site (and pooled district) and month, over the answers
-- of the month and the two before it (the survey is quarterly): 100 · (mean score − 1) / 4.
with answers as (
    select site_id, answered_month, score from {{ ref('fct_survey_answers') }}
),

months as (
    select distinct month from {{ ref('fct_source_days') }} where is_expected
),

windowed as (
    select
        answers.site_id,
        months.month,
        answers.score
    from months
    inner join answers
        on answers.answered_month <= months.month
       and answers.answered_month >= {{ dbt.dateadd('month', -2, 'months.month') }}
),

final as (
    select
        coalesce(site_id, 'district') as site_id,
        month,
        count(*) as answers,
        avg(cast(score as double)) as mean_score,
        100.0 * (avg(cast(score as double)) - 1.0) / 4.0 as survey_score
    from windowed
    group by grouping sets ((site_id, month), (month))
)

select * from final
