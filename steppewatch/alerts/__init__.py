"""Keyword alerts: rules, the query language, matching, the outbox and delivery."""
