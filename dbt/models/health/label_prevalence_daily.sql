-- Daily share of reports per schema, label path and value, from the extraction each mart uses
-- (int_extractions__latest_valid), dated by report_final_at (UTC calendar day). Per-key fields
-- are paths like 'birads.left' or 'stenosis.LAD'; list fields count a report once per element;
-- JSON null is the value 'null'. Dense: every value seen for a schema in the window gets a row
-- (share 0) on every day the schema has reports. The health check's drift test uses the same
-- shares (extractors/health/drift.py); its days follow the DAG's data intervals instead.
with latest as (
    select
        schema_name,
        labels,
        (report_final_at at time zone 'UTC')::date as day
    from {{ ref('int_extractions__latest_valid') }}
),

totals as (
    select day, schema_name, count(*) as n_reports
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
),

values_seen as (
    select distinct schema_name, label_path, label_value from counts
)

select
    totals.day,
    totals.schema_name,
    values_seen.label_path,
    values_seen.label_value,
    coalesce(counts.n_with_value, 0) as n_with_value,
    totals.n_reports,
    coalesce(counts.n_with_value, 0)::float / totals.n_reports as share
from totals
inner join values_seen on values_seen.schema_name = totals.schema_name
left join counts
    on counts.day = totals.day
    and counts.schema_name = totals.schema_name
    and counts.label_path = values_seen.label_path
    and counts.label_value = values_seen.label_value
