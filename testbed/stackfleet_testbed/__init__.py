"""The StackFleet testbed: a real OpenStack on 127.0.0.1, from PyPI packages.

Standard library only, except ``provision`` (run with the testbed venv's Python).
"""
