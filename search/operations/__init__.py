"""Operating the corpus: what the operator's dashboard, /metrics and /health/ show.

Modules by concern: latency (the per-search recorder and its summaries, in Redis), pipeline
(periodic snapshots of vectors, queues and workers; the worker ping), audit (the recall
auditor), registry (shadow spaces: add, fill, compare, switch, roll back, delete), storage
(table and index sizes), metrics (the Prometheus collector), health (the /health/ checks),
views and urls (the /dashboard/ pages, staff only). Everything heavy runs in Celery tasks
(search.tasks); a request only reads what they recorded.
"""
