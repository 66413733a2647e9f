"""Alembic revisions of the relational schema, oldest first (``NNNN_slug.py``)."""
