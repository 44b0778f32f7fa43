"""A deployment of the stack, found by its name: its outputs say where everything is. The same
code serves a stack in AWS (credentials and region as the AWS CLI finds them) and the local run
(`local up`'s endpoint): only the endpoint differs."""

from dataclasses import dataclass, field

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

# What `chat-provisioning` reads of the stack (stacks/provisioning_stack.py writes them).
OUTPUTS = ("SyncUserStateMachineArn", "SweepUsersStateMachineArn", "AuditTableName", "UserPoolId",
           "PlansBucketName", "InspectUserFunctionName")
# InspectUser may take its whole timeout (wiring.INSPECT_SECONDS) before it answers.
CALLS = Config(connect_timeout=10, read_timeout=60, retries={"mode": "standard", "total_max_attempts": 3})


class ToolError(Exception):
    """What an operator gets instead of a traceback: the reason, and an exit code for scripts."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class Deployment:
    stack: str
    outputs: dict[str, str]
    session: boto3.Session
    endpoint_url: str | None = None
    # The command line that reaches this deployment (its options), for commands to paste.
    invoked_as: str = "chat-provisioning"
    _clients: dict = field(default_factory=dict, repr=False)

    @classmethod
    def find(cls, stack: str, region: str | None = None, profile: str | None = None,
             endpoint_url: str | None = None, credentials: dict | None = None) -> "Deployment":
        session = boto3.Session(profile_name=profile, region_name=region, **(credentials or {}))
        try:
            found = session.client("cloudformation", endpoint_url=endpoint_url,
                                   config=CALLS).describe_stacks(StackName=stack)["Stacks"][0]
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code")
            if code == "ValidationError" and "does not exist" in str(e):
                raise ToolError(f"no stack {stack} in {session.region_name}: --stack names the deployed stack "
                                "(default ChatProvisioning), --region its region") from None
            if code in ("AccessDenied", "AccessDeniedException"):
                raise ToolError(f"cannot read the stack {stack} in {session.region_name}: access denied. Either no "
                                "stack has that name (an operator's OperatorPolicy may read its own stack alone), or "
                                "this identity may not read it (cloudformation:DescribeStacks)") from None
            raise ToolError(f"cannot read the stack {stack}: {e}") from None
        except BotoCoreError as e:
            raise ToolError(f"cannot read the stack {stack}: {e}") from None
        outputs = {o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs", [])}
        if missing := [o for o in OUTPUTS if o not in outputs]:
            raise ToolError(f"the stack {stack} has no output {', '.join(missing)}: deploy this version of it")
        return cls(stack, outputs, session, endpoint_url)

    def client(self, service: str):
        if service not in self._clients:
            self._clients[service] = self.session.client(service, endpoint_url=self.endpoint_url, config=CALLS)
        return self._clients[service]
