"""Local sandbox backend: the runner inside bubblewrap, limited by per-run cgroups (v1 or v2)."""
