"""Adapters that run runner tasks: the only packages that spawn sandboxes or talk to Kubernetes."""
