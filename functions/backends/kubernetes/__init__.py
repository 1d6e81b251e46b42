"""Kubernetes backend: one hardened Job per run, watched to its end, its report read from the pod log."""
