"""``s2bench``: measure and verify an S2 endpoint (this server or any other).

Runs as ``python manage.py s2bench`` or, without Django settings, as
``python -m s2site.bench``; nothing in this package imports Django. See ``cli``.
"""
