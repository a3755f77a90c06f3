-- Label value counts per UTC day (of report_final_at), schema and label path, from the
-- extraction each mart uses (int_extractions__latest_valid). Per-key fields are paths like
-- 'birads.left' or 'stenosis.LAD'; list fields count a report once per element; JSON null is
-- the value 'null'. n_reports is the day's number of reports of the schema. Incremental by day
-- (macros/incremental.sql): a build recounts the days of the changed reports only, so the
-- health mart label_prevalence_daily reads counts, never every extraction.
{{ config(
    materialized='incremental',
    unique_key=['day', 'schema_name', 'label_path', 'label_value'],
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    pre_hook="{{ delete_changed_days() }}",
    indexes=[{'columns': ['day']}, {'columns': ['source_updated_at']}],
) }}
-- depends_on: {{ ref('stg_rrief__reports') }}, {{ ref('stg_rrief__extractions') }}

with
{% if is_incremental() -%}
days as (
    {{ changed_days() }}
),
{%- endif %}

latest as (
    select
        latest.schema_name,
        latest.labels,
        latest.source_updated_at,
        (latest.report_final_at at time zone 'UTC')::date as day
    from {{ ref('int_extractions__latest_valid') }} as latest
    {% if is_incremental() -%}
    inner join days
        on latest.report_final_at >= days.day::timestamp at time zone 'UTC'
        and latest.report_final_at < (days.day + 1)::timestamp at time zone 'UTC'
    {%- endif %}
),

totals as (
    select day, schema_name, count(*) as n_reports, max(source_updated_at) as source_updated_at
    from latest
    group by day, schema_name
),

fields as (
    select latest.day, latest.schema_name, f.key as field, f.value
    from latest
    cross join lateral jsonb_each(latest.labels) as f
),

flat as (
    select day, schema_name, field as label_path, coalesce(value #>> '{}', 'null') as label_value
    from fields
    where jsonb_typeof(value) not in ('object', 'array')
    union all
    select fields.day, fields.schema_name, fields.field || '.' || k.key, coalesce(k.value #>> '{}', 'null')
    from fields
    cross join lateral jsonb_each(fields.value) as k
    where jsonb_typeof(fields.value) = 'object'
    union all
    select fields.day, fields.schema_name, fields.field, v.value
    from fields
    cross join lateral jsonb_array_elements_text(fields.value) as v
    where jsonb_typeof(fields.value) = 'array'
),

counts as (
    select day, schema_name, label_path, label_value, count(*) as n_with_value
    from flat
    group by day, schema_name, label_path, label_value
)

select
    counts.day,
    counts.schema_name,
    counts.label_path,
    counts.label_value,
    counts.n_with_value,
    totals.n_reports,
    totals.source_updated_at
from counts
inner join totals on totals.day = counts.day and totals.schema_name = counts.schema_name
