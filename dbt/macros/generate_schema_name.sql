{#- Build into exactly the schema a folder names (staging, intermediate, marts), not
    dbt's default <target>_<custom> prefix: grants and the researcher role rely on these names. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema | trim }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
