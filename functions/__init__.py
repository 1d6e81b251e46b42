"""Code execution service: the Lambda package, also run locally behind a small HTTP server."""
