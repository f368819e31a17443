"""The kit every folder of ``tests/`` shares for running real things.

- :mod:`kit.processes`: the ``taap`` executable, free ports, polling, a clean environment,
  services started as processes (``taap serve``, ``taap sample-api``, any command) and the CLI
  run as a subprocess; ``need_service`` (skip locally, fail under CI).
- :mod:`kit.loopback`: an ASGI app under a real uvicorn on a loopback port, in a thread.
- :mod:`kit.clients`: the registry a server uses (``with_registry``), clients registered in it
  (directly or with ``taap clients create``) that perform steps 1-4 by hand.
- :mod:`kit.postgres`: throw-away PostgreSQL databases.
- :mod:`kit.wire`: Basic credentials and JWT segments as tests build and read them.
- :mod:`kit.jose`: JOSE objects forged by hand (any segment, any signature) and PoP claims.
- :mod:`kit.stores`: a Redis database marked as a replay store in service (``adopt_redis``).

Imported as ``kit``: ``tests/`` has no ``__init__.py``, so pytest's default ``prepend`` import
mode puts ``tests/`` on ``sys.path`` when it loads ``tests/conftest.py``, before any test module
of any folder is imported (the same way ``logkit`` is found).
"""
