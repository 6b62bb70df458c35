"""Talking to OpenAI-compatible endpoints: the client, answer timing, the bounded load test."""
