"""Offline field sales (seed 004): sellers' devices push queued operations and pull changes.

- ``devices``: device credentials (issued by the admin API, kept hashed) and authentication;
- ``operations``: the push envelope and each collection's record shapes;
- ``push``: applies a batch, each operation on its own and once per opId;
- ``pull``: changes since a cursor, in commit-safe order, with tombstones;
- ``debt``: a customer's debt (credit sales − abonos, voids excluded);
- ``loyalty_feed``: sales and voids as raw events of provider ``field`` for crediting.
"""
