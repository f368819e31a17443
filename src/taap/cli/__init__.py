"""The ``taap`` command. It parses arguments and calls the library; nothing imports it."""
