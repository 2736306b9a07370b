"""The Django project: settings, the ASGI application and its HTTP edge."""
