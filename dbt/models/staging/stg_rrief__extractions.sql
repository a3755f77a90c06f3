-- Extraction results, renamed. Evidence spans quote report text, so they stay in raw.
with source as (
    select * from {{ source('rrief', 'extractions') }}
),

renamed as (
    select
        extraction_id,
        report_key,
        schema_name,
        schema_version,
        backend,
        extractor_version,
        adapter_id,
        status,
        labels,
        error as error_message,
        content_sha256,
        run_id,
        extracted_at
    from source
)

select * from renamed
