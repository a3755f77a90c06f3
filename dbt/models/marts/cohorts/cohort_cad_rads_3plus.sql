-- Patients with at least moderate coronary stenosis on CCTA (CAD-RADS 3, 4A, 4B or 5): one row
-- per patient, indexed on the first qualifying exam. var('uncertain_policy'): 'include' also
-- admits CAD-RADS N (non-diagnostic, so obstructive disease was not ruled out).
with qualifying as (
    select * from {{ ref('ccta_exams') }}
    where cad_rads in {{ cohort_values(['3', '4A', '4B', '5'], ['N']) }}
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
    cad_rads as index_cad_rads,
    plaque_burden as index_plaque_burden,
    modifiers as index_modifiers,
    n_qualifying_exams,
    '{{ var("uncertain_policy", "exclude") }}' as uncertain_policy
from ranked
where exam_rank = 1
