"""Extraction and item pipelines."""
