-- One row per study: report metadata (pseudonymous keys only) and one column per label,
-- straight from the schema's label paths (rrief_label_columns(), generated). No report text, no evidence.
-- Incremental on report key (macros/incremental.sql); `dbt build --full-refresh` rebuilds it.
{{ config(
    materialized='incremental',
    unique_key='report_key',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    pre_hook="{{ delete_changed_reports() }}",
    indexes=[{'columns': ['report_key'], 'unique': True}, {'columns': ['source_updated_at']}],
) }}
-- depends_on: {{ ref('stg_rrief__reports') }}, {{ ref('stg_rrief__extractions') }}

with latest as (
    select * from {{ ref('int_extractions__latest_valid') }}
    where schema_name = 'ccta'
    {% if is_incremental() -%}
    and report_key in ({{ changed_report_keys() }})
    {%- endif %}
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
    source_updated_at,
    {{ label_columns('ccta') }},
    {{ list_columns('ccta') }}
from latest
