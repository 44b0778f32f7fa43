"""The adapters: each port (ports.py) against its real service (Synapse over HTTP, Cognito,
Step Functions, SQS, S3, DynamoDB), the AWS clients, and the functions' logs and metrics."""
