"""The HTTP server: app factory, turn pipeline, agent API, feedback, metrics, security."""
