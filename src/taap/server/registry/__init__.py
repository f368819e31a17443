"""The client registry (docs/registry.md): who may ask for tokens, with which keys, for which APIs.

``port`` holds the ports (``RegistryReader`` for the token server, ``RegistryAdmin`` for the
CLI, ``Registry`` for both) and their records; ``sql`` and ``memory`` implement them.
Importing this package or ``port`` loads neither SQLAlchemy nor Alembic, so the CLI's other
commands stay light. docs/registry.md describes every module.
"""
