"""InfluxDB storage: schema, line-protocol encoding, durable writer, reader."""
