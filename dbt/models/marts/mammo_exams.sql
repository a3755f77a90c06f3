-- One row per study: report metadata (pseudonymous keys only) and one column per label,
-- straight from the schema's label paths (rrief_label_columns(), generated). No report text, no evidence.
-- Incremental on report key (macros/incremental.sql); `dbt build --full-refresh` rebuilds it.
{{ report_incremental_config() }}
-- depends_on: {{ ref('stg_rrief__reports') }}, {{ ref('stg_rrief__extractions') }}

with latest as (
    select * from {{ ref('int_extractions__latest_valid') }}
    where schema_name = 'mammo'
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
    {{ label_columns('mammo') }}
from latest
