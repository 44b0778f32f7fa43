"""The domain: who may hold what (policy), the plans that bring Matrix to it (sweep_plan), the
models of events and state, the config, the typed errors. Pure: the standard library and
pydantic only, nothing of AWS, HTTP or the layers above (`make lint` holds it to that)."""
