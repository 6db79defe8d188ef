"""Adapters for POS providers: verify, parse and normalize what each one sends."""
