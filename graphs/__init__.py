"""Shipped YAML graphs and subgraphs (package data)."""
