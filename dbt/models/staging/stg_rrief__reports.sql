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
        -- null = a full timestamp; 'day', 'month', 'year' = the RIS sent only that much
        provenance ->> 'exam_precision' as exam_at_precision,
        report_final_at,
        result_status,
        content_sha256,
        ingested_at,
        updated_at
    from source
)

select * from renamed
