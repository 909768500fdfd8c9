"""The only place with SQL. :mod:`~overc.storage.db` is the door (pool, transactions,
migrations), :mod:`~overc.storage.dialect` absorbs SQLite/MySQL differences, and each consumer
gets a small store of its own: ingest (:mod:`~overc.storage.ingest_store`), the watchdog, dispatch,
delivery and retention (``*_store``), and the UI's read model and actions.
"""
