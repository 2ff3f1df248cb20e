"""The embedded default: a local GitHub- and Azure-DevOps-compatible forge and a Flux emulator.

`promoter sandbox` serves it on loopback; `promoter.sandbox.testing.run_sandbox` runs it inside a test.
See docs/sandbox.md for the URL layout, tokens, scenario and fault formats.
"""
