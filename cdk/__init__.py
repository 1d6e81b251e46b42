"""The CDK app of the code execution service: one stack, one construct per concern (see stack.py)."""
