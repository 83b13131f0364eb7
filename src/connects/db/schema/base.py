"""What every table shares: the metadata with its naming convention, the id type, and
CHECK constraints built from the product's vocabulary."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import CheckConstraint, MetaData, String

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Ids compare byte by byte on both databases: SQLite's default (BINARY), and "C" on
# PostgreSQL, whose default collation follows the server's locale. The order of ids is
# then the same in SQL as in Python, and every key comparison is a memcmp, not a
# locale-aware strcoll (a measurable share of the monthly cycle's time).
ID = String(40).with_variant(String(40, collation="C"), "postgresql")


def one_of(column: str, enum_cls: Iterable[str], name: str) -> CheckConstraint:
    """A CHECK that ``column`` holds one of the words of ``enum_cls`` (a StrEnum, or a
    tuple of words), named ``name`` (the naming convention prefixes ``ck_<table>_``).

    The database then refuses a word the code does not know, and the words allowed are
    the vocabulary's: a new member needs a migration of its CHECK (the test comparing
    the migrated database's CHECKs with the enums says so).
    """
    words = ", ".join("'" + str(word).replace("'", "''") + "'" for word in enum_cls)
    return CheckConstraint(f"{column} IN ({words})", name=name)
