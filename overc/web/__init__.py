"""The HTTP layer shared by the pages (``overc.ui``) and the JSON APIs (``overc.api``).

Rank 4: it may use storage and the core, never ``overc.api`` or ``overc.ui``, so those two stay
siblings that only the composition root (``overc.site``, ``overc.tap``) puts side by side.
"""
