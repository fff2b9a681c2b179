"""Binance USD-M Futures: wire structs, parsing, stream routing and the connection."""
