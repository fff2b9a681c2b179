"""Using Raven from Python: the blocking `RavenClient`.

    python client.py --target localhost:50051 --duration 10

Prints each trade and quote for BTCUSDT and ETHUSDT for `--duration`
seconds, then the count per kind. The asyncio API is
`raven.client.AsyncRavenClient`; see README.md.
"""

from __future__ import annotations

import argparse

from raven.client import RavenClient
from raven.types import Kind


def main() -> None:
    parser = argparse.ArgumentParser(description="Stream live market data from a Raven server.")
    parser.add_argument("--target", default="localhost:50051", help="server host:port")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds to stream")
    parser.add_argument("--symbols", default="BTCUSDT,ETHUSDT", help="comma-separated symbols")
    parser.add_argument("--token", default="", help="bearer token, when the server asks for one")
    args = parser.parse_args()

    client = RavenClient(args.target, token=args.token)
    client.connect()
    try:
        # Every event is a raven.model struct (Trade, Quote, ...); this prints one line each.
        counts = client.stream_market_data(
            args.symbols.split(","),
            duration_seconds=args.duration,
            kinds=[Kind.TRADE, Kind.QUOTE],
        )
        print("received:", dict(counts))
    finally:
        client.close()


if __name__ == "__main__":
    main()
