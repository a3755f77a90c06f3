-- One row per pipeline day (data interval), schema, backend and adapter: volumes, quarantine and
-- invalid-output rates and extraction latency. Only the newest run of each day counts, so a
-- manual rerun of a day is not added to the scheduled one.
-- Latency: the report-weighted mean of the batches' p50s, and the worst batch's p95 (batch
-- percentiles cannot be merged exactly; see extractors/health/metrics.py).
with metrics as (
    select * from {{ source('rrief_ops', 'run_metrics') }}
),

batches as (
    select * from metrics
    where schema_name is not null and data_interval_start is not null
),

newest_run as (
    select
        data_interval_start,
        run_id,
        row_number() over (
            partition by data_interval_start order by max(recorded_at) desc, run_id desc
        ) as recency
    from batches
    group by data_interval_start, run_id
),

fetched as (
    select distinct on (data_interval_start)
        data_interval_start,
        n_loaded as n_fetched,
        n_errored as n_ris_record_errors
    from metrics
    where task_id = 'fetch' and data_interval_start is not null
    order by data_interval_start, recorded_at desc, run_id desc
),

alerts as (
    select window_start, count(*) as n_alerts
    from {{ source('rrief_ops', 'alerts') }}
    group by window_start
),

daily as (
    select
        batches.data_interval_start,
        batches.run_id,
        batches.schema_name,
        batches.backend,
        batches.adapter_id,
        count(*) as n_batches,
        sum(batches.n_in) as n_in,
        sum(batches.n_loaded) as n_loaded,
        sum(batches.n_quarantined) as n_quarantined,
        sum(batches.n_errored) as n_errored,
        sum(batches.latency_p50_ms * batches.n_in)
            / nullif(sum(case when batches.latency_p50_ms is not null then batches.n_in end), 0)
            as latency_p50_ms,
        max(batches.latency_p95_ms) as latency_p95_ms
    from batches
    inner join newest_run
        on newest_run.data_interval_start = batches.data_interval_start
        and newest_run.run_id = batches.run_id
        and newest_run.recency = 1
    group by 1, 2, 3, 4, 5
)

select
    (daily.data_interval_start at time zone 'UTC')::date as day,
    daily.data_interval_start,
    daily.run_id,
    daily.schema_name,
    daily.backend,
    daily.adapter_id,
    daily.n_batches,
    fetched.n_fetched,
    fetched.n_ris_record_errors,
    daily.n_in,
    daily.n_loaded,
    daily.n_quarantined,
    daily.n_errored,
    case when daily.n_in > 0 then daily.n_quarantined::float / daily.n_in end as quarantine_rate,
    case
        when daily.n_in > 0 then (daily.n_quarantined + daily.n_errored)::float / daily.n_in
    end as invalid_output_rate,
    daily.latency_p50_ms,
    daily.latency_p95_ms,
    coalesce(alerts.n_alerts, 0) as n_alerts_day
from daily
left join fetched on fetched.data_interval_start = daily.data_interval_start
left join alerts on alerts.window_start = daily.data_interval_start
