"""AWS adapters: the only package that imports boto3 (EKS authentication, later Step Functions)."""
