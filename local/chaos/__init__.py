"""`make chaos`: a bounded run against the local stack under load, duplicates and injected faults
that checks nothing is lost, nothing is doubled and bad input never gets in (see RELIABILITY.md)."""
