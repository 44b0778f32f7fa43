"""state.json: what `local up` started and created, which every later command (another process)
reads. Typed, so that a key renamed in `up` fails where the state is read, not in a test's
KeyError."""

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from chat_provisioning.domain.config import ChatConfig


class LocalState(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    state_dir: Path
    pids: dict[str, int]  # "aws", "synapse": what `down` stops
    synapse_url: str
    synapse_version: str
    admin_token_file: Path  # the bot's token (0600), never in state.json
    jwt_private_key_file: Path  # signs the Cognito-shaped ID tokens Synapse's JWT login accepts
    aws_endpoint_url: str
    aws_credentials: dict[str, str]  # the administrator's, for the emulated AWS
    operator_credentials: dict[str, str]  # signed as the stack's OperatorPolicy (toolbox)
    importer_credentials: dict[str, str]  # OperatorPolicy and GroupImportPolicy (import-groups)
    config: ChatConfig  # the local deployment's: its server, pool and rooms
    sync_state_machine_arn: str
    sweep_state_machine_arn: str
    plans_bucket: str
    audit_table: str
    locks_table: str
    failed_events_url: str
    event_bus: str
    functions: dict[str, str]  # wiring's name -> the deployed function's name
    roles: dict[str, str]  # wiring's name -> its role's ARN

    def summary(self) -> dict:
        """What `local up` answers: where everything is, for a person; the credentials and the
        rest stay in state.json, which the commands read."""
        return {"synapse_url": self.synapse_url, "synapse_version": self.synapse_version,
                "server_name": self.config.server_name, "aws_endpoint_url": self.aws_endpoint_url,
                "user_pool_id": self.user_pool_id, "client_id": self.client_id,
                "rooms": {key: {"name": room.name, "room_id": room.room_id} for key, room in self.config.rooms.items()},
                "sync_state_machine_arn": self.sync_state_machine_arn,
                "sweep_state_machine_arn": self.sweep_state_machine_arn,
                "post_confirmation_function": self.functions["PostConfirmation"],
                "admin_token_file": str(self.admin_token_file), "state_file": str(self.state_dir / "state.json")}

    @property
    def user_pool_id(self) -> str:
        return self.config.user_pool.user_pool_id

    @property
    def client_id(self) -> str:
        return self.config.user_pool.client_id

    @classmethod
    def load(cls, state_dir: Path) -> "LocalState":
        path = state_dir / "state.json"
        if not path.exists():
            raise SystemExit(f"no {path}: run `chat-provisioning local up` first")
        return cls.model_validate_json(path.read_text())

    def save(self) -> None:
        (self.state_dir / "state.json").write_text(self.model_dump_json(indent=1))
