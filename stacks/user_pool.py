"""The user pool: created with its groups (dev, the demo), or production's, imported, which CDK
cannot attach a trigger to (`chat-provisioning attach-trigger` does, as the README says)."""

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_

from chat_provisioning.domain.config import ChatConfig

from .findings import accept_nag_finding


class UserPool:
    def __init__(self, stack: Stack, config: ChatConfig):
        self.created: cognito.UserPool | None = None
        if not config.user_pool.create:
            self.arn = stack.format_arn(service="cognito-idp", resource="userpool",
                                        resource_name=config.user_pool.user_pool_id)
            self.id = config.user_pool.user_pool_id
            return
        pool = self.created = cognito.UserPool(
            stack, "UserPool", self_sign_up_enabled=True,
            sign_in_aliases=cognito.SignInAliases(email=True),
            password_policy=cognito.PasswordPolicy(
                min_length=12, require_symbols=True, require_digits=True,
                require_lowercase=True, require_uppercase=True),
            mfa=cognito.Mfa.OPTIONAL, mfa_second_factor=cognito.MfaSecondFactor(sms=False, otp=True),
            removal_policy=RemovalPolicy.DESTROY)
        pool.add_client("MobileClient", auth_flows=cognito.AuthFlow(user_srp=True))
        for group in config.roles:
            cognito.CfnUserPoolGroup(stack, f"Group-{group}", user_pool_id=pool.user_pool_id, group_name=group)
        accept_nag_finding(pool, "AwsSolutions::AwsSolutions-COG2", "Dev/demo pool: MFA is offered (TOTP), not forced.")
        for nag_rule in ("AwsSolutions::AwsSolutions-COG3", "AwsSolutions::AwsSolutions-COG8"):
            accept_nag_finding(pool, nag_rule, "Dev/demo pool: threat protection (Plus tier) is billed per user; "
                                              "production imports its own pool.")
        self.arn, self.id = pool.user_pool_arn, pool.user_pool_id

    def trigger_post_confirmation(self, fn: lambda_.Function) -> None:
        """A created pool runs `fn` after each confirmation; an imported one may (the invoke is
        granted here, the trigger attached by an operator)."""
        if self.created:
            self.created.add_trigger(cognito.UserPoolOperation.POST_CONFIRMATION, fn)
        else:
            fn.add_permission("CognitoInvoke", principal=iam.ServicePrincipal("cognito-idp.amazonaws.com"),
                              source_arn=self.arn)
