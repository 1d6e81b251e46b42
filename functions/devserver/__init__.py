"""The development server of `make run`: API Gateway's proxy events over plain HTTP, the Lambda handler in
worker processes, and the server's own connection handling. Not deployed: AWS serves the same handler."""
