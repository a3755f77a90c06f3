-- Patients with a suspicious mammogram (exam BI-RADS 4, 4A-4C, 5 or 6): one row per patient,
-- indexed on the first qualifying exam. var('uncertain_policy'): 'include' also admits
-- BI-RADS 0 (incomplete assessment, which may turn out 4 or higher after recall).
with qualifying as (
    select * from {{ ref('mammo_exams') }}
    where exam_birads in {{ cohort_values(['4', '4A', '4B', '4C', '5', '6'], ['0']) }}
),

ranked as (
    select
        *,
        row_number() over (
            partition by patient_key order by exam_at nulls last, report_final_at, report_key
        ) as exam_rank,
        count(*) over (partition by patient_key) as n_qualifying_exams
    from qualifying
)

select
    patient_key,
    report_key as index_report_key,
    exam_at as index_exam_at,
    exam_birads as index_exam_birads,
    birads_left as index_birads_left,
    birads_right as index_birads_right,
    density as index_density,
    n_qualifying_exams,
    '{{ var("uncertain_policy", "exclude") }}' as uncertain_policy
from ranked
where exam_rank = 1
