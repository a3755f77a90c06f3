-- Patients with a pleural effusion on chest X-ray: one row per patient, indexed on the first
-- qualifying study. var('uncertain_policy'): 'exclude' admits only 'positive'; 'include' also
-- admits 'uncertain' (hedged reports such as "cannot exclude a small effusion").
with qualifying as (
    select * from {{ ref('cxr_findings') }}
    where pleural_effusion in {{ cohort_values(['positive'], ['uncertain']) }}
),

ranked as (
    select
        *,
        row_number() over (
            partition by patient_key order by exam_at nulls last, report_final_at, report_key
        ) as exam_rank,
        count(*) over (partition by patient_key) as n_qualifying_studies
    from qualifying
)

select
    patient_key,
    report_key as index_report_key,
    exam_at as index_exam_at,
    pleural_effusion as index_label,
    n_qualifying_studies,
    '{{ var("uncertain_policy", "exclude") }}' as uncertain_policy
from ranked
where exam_rank = 1
