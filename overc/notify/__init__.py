"""Notification channels and the dispatcher that delivers alerts through them exactly once."""
