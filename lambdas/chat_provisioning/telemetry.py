"""What every handler logs and counts with: Powertools' logger and metrics, and the caps that
keep wire data (the bot's token among it) out of the logs. Light on purpose: the sign-up
trigger loads it on Cognito's clock (signup.py)."""

import logging
import warnings

from aws_lambda_powertools import Logger, Metrics

# Steps that emit no metric of their own would warn on every invocation.
warnings.filterwarnings("ignore", message="No application metrics to publish")

logger = Logger()
metrics = Metrics(namespace="ChatProvisioning")

# With the root logger at DEBUG (AWS_LAMBDA_LOG_LEVEL, a developer's basicConfig), botocore
# logs every response body, GetSecretValue's too: the bot's token. These libraries log wire
# data at DEBUG only, so INFO is their cap, whatever the root level.
for _library in ("botocore", "boto3", "s3transfer", "urllib3", "httpx", "httpcore"):
    logging.getLogger(_library).setLevel(logging.INFO)
