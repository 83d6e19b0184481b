"""The directory service: the clinic's partners, their categories, the public Partners in Health
pages and the admin API. Every committed partner change is published as ``PartnerChanged``.

Layers, outermost first: :mod:`.web` (HTTP ↔ service calls), :mod:`.service` (use cases, one
transaction each), :mod:`.publisher` (outbox messages), :mod:`.storage` (tables, repository),
:mod:`.domain` (rules, no framework).
"""
