"""Catalog adapters: the engine's index and stream states in a database."""
