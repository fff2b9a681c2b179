"""Raven: a market data server for crypto exchange feeds.

Raven connects to exchange feeds, normalizes and validates their data, keeps
the latest state of every market in memory, stores the history and serves
both over gRPC.
"""

__version__ = "0.1.0"
