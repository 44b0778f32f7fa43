"""What operators use (`chat-provisioning`, toolbox/): InspectUser, their one read of Matrix (no
token, no network path for people), and the managed policies to attach to their role."""

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

from stacks import wiring

from .functions import Functions
from .user_pool import UserPool
from .workflow import Workflow


class Operators:
    def __init__(self, stack: Stack, functions: Functions, pool: UserPool, workflow: Workflow,
                 audit: dynamodb.Table, plans: s3.Bucket):
        self.inspect_user = functions.make("InspectUser", workflow.env,
                                           timeout=Duration.seconds(wiring.INSPECT_SECONDS))
        functions.grant("InspectUser", self.inspect_user, {"pool": [pool.arn], "token": [functions.token]})

        def allowed(actions: list[str], resources: list[str]) -> iam.PolicyStatement:
            return iam.PolicyStatement(actions=actions, resources=resources)
        # What `chat-provisioning` calls, and nothing more: attach it to the operators' role.
        policy = iam.ManagedPolicy(stack, "OperatorPolicy", description="chat-provisioning's operator commands",
                                   statements=[
            allowed(["cloudformation:DescribeStacks"], [stack.stack_id]),
            allowed(["cognito-idp:ListUsers"], [pool.arn]),  # a user named by email or username
            allowed(["lambda:InvokeFunction"], [self.inspect_user.function_arn]),
            allowed(["dynamodb:Query"], [audit.table_arn]),
            allowed(["states:ListExecutions", "states:StartExecution"],
                    [m.state_machine_arn for m in workflow.machines.values()]),
            allowed(["states:DescribeExecution", "states:GetExecutionHistory", "states:RedriveExecution"],
                    workflow.execution_arns(stack)),
            allowed(["s3:GetObject"], [plans.arn_for_objects("sweeps/*")])])
        CfnOutput(stack, "OperatorPolicyArn", value=policy.managed_policy_arn,
                  description="Attach to the role of the people who run chat-provisioning's commands")
        # Day one only (`chat-provisioning import-groups --apply`): a grant of roles, kept out of
        # the everyday policy. Attach it beside OperatorPolicy for the import, then detach it.
        importing = iam.ManagedPolicy(stack, "GroupImportPolicy", description="chat-provisioning import-groups --apply",
                                      statements=[allowed(["cognito-idp:AdminAddUserToGroup"], [pool.arn])])
        CfnOutput(stack, "GroupImportPolicyArn", value=importing.managed_policy_arn,
                  description="Beside OperatorPolicy, for import-groups --apply on day one; detach it after")
