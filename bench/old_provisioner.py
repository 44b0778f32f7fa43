"""The baseline of `make bench`'s first sign-up: what the one PostConfirmation Lambda this
project replaced did (chat-services.md): read the bot's token from Secrets Manager, create the
user with one admin PUT, join it to The Red Room, answer Cognito. Run by bench/signup.py in the
same local Lambda runtime as the stack's functions; no checks, no retries, no audit."""

import os
from urllib.parse import quote

import boto3
import httpx

secrets = boto3.client("secretsmanager")
synapse = httpx.Client(base_url=os.environ["SYNAPSE_URL"], timeout=5)


def handler(event, context):
    token = secrets.get_secret_value(SecretId=os.environ["TOKEN_SECRET"])["SecretString"]
    sub = event["request"]["userAttributes"]["sub"]
    user = f"@{sub}:{os.environ['SERVER_NAME']}"
    auth = {"Authorization": f"Bearer {token}"}
    synapse.put(f"/_synapse/admin/v2/users/{quote(user, safe='')}", headers=auth, json={
        "external_ids": [{"auth_provider": os.environ["AUTH_PROVIDER"], "external_id": sub}]}).raise_for_status()
    synapse.post(f"/_synapse/admin/v1/join/{quote(os.environ['ROOM_ID'], safe='')}", headers=auth,
                 json={"user_id": user}).raise_for_status()
    return event
