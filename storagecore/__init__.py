"""The S2 storage engine: plain Python, no Django.

Engine modules hold the domain types (names, configurations, limits, errors) and,
later, the record log itself. They import nothing from Django, DRF or Channels
(an import-linter contract enforces it), so they are tested without a database.
"""
