"""The demo: a synthetic RIS with realistic reports, run through ``rrief_daily`` end to end."""
