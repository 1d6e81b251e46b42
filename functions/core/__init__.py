"""Pure domain logic: models, languages, limits, verdicts, errors and the backend protocol.

Nothing here imports a cloud SDK, the Kubernetes client or spawns a process (checked by import-linter).
"""
