"""Identifiers. UUIDv7 keys sort by creation time, so keyset pagination by id is stable."""

import uuid

import uuid6


def new_id() -> uuid.UUID:
    return uuid.UUID(bytes=uuid6.uuid7().bytes)
