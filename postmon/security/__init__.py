"""Security of health data: pseudonyms, secrets, MQTT accounts and ACLs, TLS,
InfluxDB users, log redaction. The right to erasure is in ``postmon.erasure``.

Posture data is health data. What is protected, how, and how to deploy it is
documented in ``docs/SECURITY.md``. This package's ``__init__`` imports
nothing heavy: ``postmon.config`` imports ``postmon.security.pseudonym``.
"""
