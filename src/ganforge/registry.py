"""One small registry for the things a recipe names: algorithms, objectives, network architectures, data sources.

Each is a ``Registry`` of named entries with a one-line description (its source or help text). ``get`` answers an
unknown name with one line that names the kind, the close match ("did you mean ...") and every known name, as a
``ConfigError`` (or the error class the registry was made with: data sources raise ``DataError``), so that the CLI
prints it and exits 2 wherever the name was mistyped.
"""
from __future__ import annotations

import difflib
from typing import Callable, Generic, Iterator, TypeVar

from .errors import ConfigError, GanforgeError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one kind (``"algorithm"``, ``"objective"``, ...), each with a description.

    ``shown`` (optional) spells a name in the list of known names of an error, e.g. ``"idx:..."`` for a data source
    that takes an argument. Iteration yields the names in sorted order."""

    def __init__(self, kind: str, error: type[GanforgeError] = ConfigError,
                 shown: Callable[[str], str] | None = None):
        self.kind, self.error, self.shown = kind, error, shown or (lambda name: name)
        self._entries: dict[str, tuple[T, str]] = {}

    def add(self, name: str, value: T, info: str = "") -> T:
        """Register ``value`` under ``name`` (a later registration of the same name replaces it) and return it."""
        if not name:
            raise TypeError(f"a {self.kind} needs a non-empty name to be registered, got {name!r} for {value!r}")
        self._entries[name] = (value, info)
        return value

    def register(self, name: str, info: str = "") -> Callable[[T], T]:
        """Decorator form of ``add``: ``@REG.register("name", "what it is")``."""
        def wrap(value: T) -> T:
            return self.add(name, value, info)
        return wrap

    def names(self) -> list[str]:
        return sorted(self._entries)

    def get(self, name: str, where: str = "", spelled: str | None = None) -> T:
        """The entry called ``name``; unknown names raise ``self.error`` with a hint and the known names.

        ``where`` prefixes the message with the config key it came from; ``spelled`` is how the user wrote the name
        (e.g. a whole data spec ``bogus:dir`` whose registered part is ``bogus``)."""
        if name not in self._entries:
            raise self.unknown(name, where, spelled)
        return self._entries[name][0]

    def unknown(self, name: str, where: str = "", spelled: str | None = None) -> GanforgeError:
        close = difflib.get_close_matches(name, self._entries, n=1)
        hint = f" (did you mean '{self.shown(close[0])}'?)" if close else ""
        prefix = f"{where}: " if where else ""
        known = ", ".join(self.shown(n) for n in self.names()) or "none"
        return self.error(f"{prefix}unknown {self.kind} '{spelled if spelled is not None else name}'{hint}; "
                          f"known: {known}")

    def info(self, name: str) -> str:
        """The description registered with ``name`` (its source or help line)."""
        self.get(name)
        return self._entries[name][1]

    def describe(self) -> dict[str, str]:
        """name -> description, sorted by name (what ``ganforge list --all`` prints)."""
        return {name: self._entries[name][1] for name in self.names()}

    def items(self) -> list[tuple[str, T]]:
        return [(name, self._entries[name][0]) for name in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self.names())})"
