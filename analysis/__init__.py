"""Pure signal processing for trunk-worn IMUs: no I/O, no clocks, no logging.

Everything here takes arrays plus an explicit sample rate and returns typed
results (frozen dataclasses or numpy structured arrays). The import-boundary
test in ``tests/test_architecture.py`` keeps it that way.
"""
