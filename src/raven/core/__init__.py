"""The core pipeline between connectors and clients: validation, state, fan-out."""
