"""The Lambda handlers, thin: each parses its event, runs the domain over the ports its Runtime
holds (runtime.py, built once per cold start), and answers. wiring.py in stacks/ names which
handler serves which function."""
