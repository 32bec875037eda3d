"""Durable state: per-policy core state, captured specs, write-ahead intents, leader lease."""
