"""Exchange connectors: venue wire formats in, normalized events out."""
