-- The extraction each mart should use: per report, the newest successful extraction of the
-- report's CURRENT text (an edited report is not described by labels of its old text) under the
-- report's CURRENT type (a report reclassified in the RIS, CXR -> MG, counts only in the mart of
-- its new type), preferring the highest schema version, then the most recent run.
-- Incremental on report key (macros/incremental.sql): a build reads the changed reports only.
{{ report_incremental_config() }}

with extractions as (
    select * from {{ ref('stg_rrief__extractions') }}
    {% if is_incremental() -%}
    where report_key in ({{ changed_report_keys() }})
    {%- endif %}
),

reports as (
    select * from {{ ref('stg_rrief__reports') }}
    {% if is_incremental() -%}
    where report_key in ({{ changed_report_keys() }})
    {%- endif %}
),

valid as (
    select
        extractions.*,
        reports.patient_key,
        reports.accession_key,
        reports.modality,
        reports.exam_at,
        reports.report_final_at,
        greatest(reports.updated_at, extractions.extracted_at) as source_updated_at,
        row_number() over (
            partition by extractions.report_key
            order by
                extractions.schema_version desc,
                extractions.extracted_at desc,
                extractions.extraction_id desc
        ) as recency
    from extractions
    inner join reports
        on reports.report_key = extractions.report_key
        and reports.content_sha256 = extractions.content_sha256
        and reports.report_type = extractions.schema_name
    where extractions.status = 'ok'
)

select
    report_key,
    schema_name,
    schema_version,
    patient_key,
    accession_key,
    modality,
    exam_at,
    report_final_at,
    backend,
    extractor_version,
    adapter_id,
    labels,
    run_id,
    extracted_at,
    source_updated_at
from valid
where recency = 1
