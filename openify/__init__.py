"""Openify: a self-hosted LLM application server that speaks the Dify Service API."""

__version__ = "0.1.0"
