"""What test modules share besides fixtures (those live in the ``conftest.py`` of their depth):
constants, builders, clients and waits. No test module imports another test module."""
