"""Pusher executor that publishes a model version atomically."""
