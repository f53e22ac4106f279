"""The control loop: collect, evaluate, plan, gate, act, verify."""
