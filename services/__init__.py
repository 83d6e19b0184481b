"""Handoff's services. Each subpackage is one service; none imports another (they meet only
through the messages in :mod:`shared`). :mod:`services.cli` and :mod:`services.dev` are the
composition roots that start them."""
