"""The gRPC API: the `raven.v1.MarketDataService` implementation and its server."""
