"""Channel connectors: each module is one connector, registered by name."""
