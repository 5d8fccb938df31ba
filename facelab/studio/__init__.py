"""facelab studio: a browser UI over a workspace (facesets, models, videos, runs) on FastAPI, Jinja2 templates
and plain JavaScript. ``app.create_app`` builds the app, ``app.serve`` runs it; the security rules live in
``security.py``; each page module (``facesets.py``, ...) holds its routes and is listed in ``app.PAGES``."""
