-- Report metadata, renamed. report_text is deliberately not selected: nothing downstream of
-- staging may carry report text.
with source as (
    select * from {{ source('rrief', 'reports') }}
),

renamed as (
    select
        report_key,
        patient_key,
        accession_key,
        source as source_system,
        modality,
        report_type,
        exam_at,
        report_final_at,
        content_sha256,
        ingested_at,
        updated_at
    from source
)

select * from renamed
