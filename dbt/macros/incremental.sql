{#- Incremental models on report key: a daily build reads what changed, not the warehouse.

    A report has changed when its raw row changed (new, edited text, reclassified: updated_at)
    or it got a new extraction (extracted_at) since the model's newest source_updated_at, less
    var('lookback_days') (transactions that commit late, clock skew). An incremental model first
    deletes the rows of every changed report (pre_hook: a report reclassified away from a mart,
    or edited and not yet re-extracted, must leave it), then delete+insert writes the changed
    reports' current rows. `dbt build --full-refresh` rebuilds everything; tests/test_dbt.py
    checks that both give the same tables. -#}

{#- The watermark as a literal, read once when the model runs (a literal lets PostgreSQL
    plan index scans on the change timestamps instead of a generic estimate). -#}
{% macro changed_since() -%}
    {%- if execute -%}
        {%- set query -%}
            select coalesce(max(source_updated_at), '-infinity'::timestamptz)
                - interval '{{ var("lookback_days", 3) | int }} days'
            from {{ this }}
        {%- endset -%}
        {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | list -%}
        {%- if 'source_updated_at' not in columns -%}
            {{ exceptions.raise_compiler_error(
                this ~ " was built before the models became incremental (no source_updated_at): "
                ~ "rebuild it once with `dbt build --full-refresh` (rrief_daily: trigger with "
                ~ "{\"dbt_full_refresh\": true})") }}
        {%- endif -%}
        {%- set since = run_query(query).columns[0].values()[0] -%}
        '{{ since }}'::timestamptz
    {%- else -%}
        '-infinity'::timestamptz
    {%- endif -%}
{%- endmacro %}

{% macro changed_report_keys() -%}
    select report_key from {{ ref('stg_rrief__reports') }} where updated_at >= {{ changed_since() }}
    union
    select report_key from {{ ref('stg_rrief__extractions') }} where extracted_at >= {{ changed_since() }}
{%- endmacro %}

{#- pre_hook of the incremental models: remove the changed reports' rows. -#}
{% macro delete_changed_reports() -%}
    {%- if is_incremental() -%}
    delete from {{ this }} where report_key in ({{ changed_report_keys() }})
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}

{#- The UTC days of the changed reports (their current report_final_at): what a daily-grain
    incremental model recomputes. -#}
{% macro changed_days() -%}
    select distinct (report_final_at at time zone 'UTC')::date as day
    from {{ ref('stg_rrief__reports') }}
    where report_key in ({{ changed_report_keys() }})
{%- endmacro %}

{#- pre_hook of the daily-grain incremental models: remove the changed days' rows. -#}
{% macro delete_changed_days() -%}
    {%- if is_incremental() -%}
    delete from {{ this }} where day in ({{ changed_days() }})
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}

{#- The config of the models incremental on report key (the intermediate model and the marts):
    delete+insert after the changed reports' rows are removed, refusing a schema change
    (`dbt build --full-refresh` after changing a model's columns). -#}
{% macro report_incremental_config() -%}
    {{ config(
        materialized='incremental',
        unique_key='report_key',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        pre_hook="{{ delete_changed_reports() }}",
        indexes=[
            {'columns': ['report_key'], 'unique': True},
            {'columns': ['source_updated_at']},
            {'columns': ['report_final_at']},
        ],
    ) }}
{%- endmacro %}
