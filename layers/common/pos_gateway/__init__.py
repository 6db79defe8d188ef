"""POS Gateway domain package: provider adapters, ingest, loyalty and the data layer."""
