"""The benchmark harness: seeded feeds, scenarios, and reports (`make bench`)."""
