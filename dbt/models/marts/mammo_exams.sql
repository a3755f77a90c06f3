-- One row per study: report metadata (pseudonymous keys only) and one column per label,
-- straight from the schema's label paths (rrief_label_columns(), generated). No report text, no evidence.
with latest as (
    select * from {{ ref('int_extractions__latest_valid') }}
    where schema_name = 'mammo'
)

select
    report_key,
    patient_key,
    accession_key,
    modality,
    exam_at,
    report_final_at,
    schema_version,
    backend,
    extractor_version,
    adapter_id,
    extracted_at,
    {{ label_columns('mammo') }}
from latest
