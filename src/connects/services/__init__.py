"""The service layer: one function per command, each one transaction (or two-phase).

Handlers take a :class:`connects.services.context.Context` (storage, clock, catalog,
gateway) and plain arguments, enforce the domain rules, and write through
:class:`connects.services.book.AccountBook`, which holds the account's lock.
"""
