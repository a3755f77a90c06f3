-- Daily share of reports per schema, label path and value (counts: int_label_counts_daily, kept
-- incrementally), dated by report_final_at (UTC calendar day). Dense: every value seen for a
-- schema in the window gets a row (share 0) on every day the schema has reports. A table over
-- the counts (days x values), cheap to rebuild whatever the number of extractions. The health
-- check's drift test uses the same shares (extractors/health/drift.py); its days follow the
-- DAG's data intervals instead.
with counts as (
    select * from {{ ref('int_label_counts_daily') }}
),

totals as (
    select distinct day, schema_name, n_reports from counts
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
