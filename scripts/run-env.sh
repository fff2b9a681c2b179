#!/usr/bin/env bash
# Run the Raven server with the development config (what `make run` does).
# Start the simulator first in another terminal: `make sim`.
set -euo pipefail
cd "$(dirname "$0")/.."
export RAVEN_CONFIG="${RAVEN_CONFIG:-config/development.toml}"
export RAVEN_LOG="${RAVEN_LOG:-info}"
exec .venv/bin/raven serve "$@"
