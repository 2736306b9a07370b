"""Basins: the model, its services, API views and admin."""
