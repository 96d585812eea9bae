"""Offline tooling for the spitikos stack: the mock engine and `python -m spitikos plan`."""
