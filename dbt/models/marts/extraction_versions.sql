-- Per schema and extractor version: how many studies the marts take from it (the latest valid
-- extraction of each report's current text), so a researcher can see whether a table mixes
-- versions and restrict a cohort to one (filter a mart on adapter_id / extractor_version).
-- adapter_id is the registry's id (ops.adapters) for LLM backends, null for the rules.
with latest as (
    select * from {{ ref('int_extractions__latest_valid') }}
)

select
    schema_name,
    schema_version,
    backend,
    extractor_version,
    adapter_id,
    count(*) as n_studies,
    min(extracted_at) as first_extracted_at,
    max(extracted_at) as last_extracted_at
from latest
group by schema_name, schema_version, backend, extractor_version, adapter_id
