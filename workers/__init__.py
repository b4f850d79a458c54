"""Job transport for triage runs: the embedded local worker, Celery and RQ."""
