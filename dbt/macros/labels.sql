{#- Helpers that turn the JSONB labels of an extraction into typed columns. The column lists
    come from rrief_label_columns() / rrief_list_columns(), generated from the schema files
    into macros/generated/label_columns.sql. -#}

{% macro label_columns(schema_name, labels='labels') -%}
    {%- for c in rrief_label_columns()[schema_name] %}
    {{ labels }} #>> '{{ '{' ~ (c.path | map('tojson') | join(',')) ~ '}' }}' as {{ c.column }}
    {%- if not loop.last %},{% endif %}
    {%- endfor %}
{%- endmacro %}

{% macro list_columns(schema_name, labels='labels') -%}
    {%- for field, values in rrief_list_columns()[schema_name].items() %}
    coalesce(
        (select string_agg(v, ',' order by array_position(array[{% for v in values %}'{{ v }}'{% if not loop.last %}, {% endif %}{% endfor %}]::text[], v))
         from jsonb_array_elements_text({{ labels }} -> '{{ field }}') as v),
        ''
    ) as {{ field }}
    {%- for v in values %},
    coalesce({{ labels }} -> '{{ field }}' ? '{{ v }}', false) as has_{{ field }}_{{ v | lower }}
    {%- endfor %}
    {%- if not loop.last %},{% endif %}
    {%- endfor %}
{%- endmacro %}

{#- The admitted values of a cohort criterion under var('uncertain_policy'). -#}
{% macro cohort_values(affirmed, uncertain) -%}
    {%- set policy = var('uncertain_policy', 'exclude') -%}
    {%- if policy not in ('exclude', 'include') -%}
        {{ exceptions.raise_compiler_error("uncertain_policy must be 'exclude' or 'include', got '" ~ policy ~ "'") }}
    {%- endif -%}
    {%- set values = affirmed + (uncertain if policy == 'include' else []) -%}
    ({% for v in values %}'{{ v }}'{% if not loop.last %}, {% endif %}{% endfor %})
{%- endmacro %}
