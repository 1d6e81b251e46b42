"""Preflight: does the cluster give runner pods the isolation the service promises? One check per prerequisite.

`python -m functions preflight` (and `make preflight ENV=...`) reads cluster objects as the operator running it
and acts as the service by impersonating its Kubernetes group (the group the EKS access entry maps the Lambda's
role to), so RBAC, admission and the canary Jobs see exactly what the service's requests see:

- cluster.py  the namespace (Pod Security), NetworkPolicy, quota, limit range, RuntimeClass;
- access.py   the service's RBAC (exactly what it needs) and the admission guardrails (server-side dry runs);
- canary.py   Jobs run as the service: an egress probe that must reach nothing, and each runner image;
- cli.py      options, the order of the checks, the report and its exit code.
"""
