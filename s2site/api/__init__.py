"""The HTTP edge of the API: errors, request parsing, responses, ASGI middleware."""
