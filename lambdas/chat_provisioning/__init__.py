"""Provision Matrix users from Cognito: the code the Lambda asset ships."""
