"""The bus between analysis and storage: in-process (one host) or MQTT v5.

``base.Bus`` is what producers call, ``base.InProcessBus`` and
``mqtt.MqttPublisher`` implement it; ``mqtt.IngestWorker`` feeds MQTT
messages to a ``base.Sink`` (the InfluxDB writer). Topics and payloads:
``codec`` and docs/MQTT.md.
"""
