"""The local run: a real Synapse, moto with Step Functions execution, the real handlers."""
