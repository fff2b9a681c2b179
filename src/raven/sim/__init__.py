"""A Binance USD-M Futures simulator on loopback: Raven's stand-in for the
venue in the demo, the tests and the benchmarks."""
