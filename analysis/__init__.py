"""Analysis of benchmark results: tidy tables from run directories, rliable-style statistics, the study's figures.

``tidy`` (collect runs, report missing/failed ones), ``stats`` (aggregate metrics and seeded
stratified-bootstrap CIs), ``scores`` (per-run scores at budgets), ``agents`` (switches, order,
one colour per agent), ``style`` (fonts, saving, tables), ``figures`` (one module per figure),
``cli`` (``python -m analysis collect|figures``).
"""
