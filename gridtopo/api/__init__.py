"""The HTTP API: ``app`` (the FastAPI app and its factory), ``server`` (how ``gridtopo serve``
runs uvicorn), ``routes``, ``schemas`` (what is accepted and answered), ``auth`` (the key a
request presents, checked first), ``keys`` (API keys), ``served`` (the model a worker serves,
and how it follows the database), ``service`` (a worker's shared state), ``middleware`` (body
limits, the status fast path), ``problems`` (RFC 7807 error answers), ``limits`` and
``access_log`` (personal data), ``openapi``, ``errors``."""
