"""Validation messages: pydantic's errors in words a YAML author understands, and router options.

Experiments, routemaps, router options (the controller, the route plugins and ``kubectl iter8
release create``) and the custom-metrics task's provider specs are all validated with pydantic,
and all report problems the same way: one line per problem, naming the field as the document
writes it (``SLOs.upper[0].limit``) and quoting at most a short excerpt of the value.

**Why a module of its own.** The helpers used to live in ``experiment``, so a routemap reached
them through ``experiment`` and closed the import circle experiment -> registry -> routemap ->
experiment; route plugins, ``release`` and custom metrics depended on the experiment model only
for its error rendering. This module imports nothing of the package but :mod:`.errors` and the
bounded quoting of :mod:`.expressions` (both leaves), so anything that validates may import it.

Router options are validated in one place, :func:`router_config`, by whoever reads a routemap
first; the router then receives the validated model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from .errors import UsageError
from .expressions import short

C = TypeVar("C", bound=BaseModel)


def format_loc(loc: Iterable[int | str]) -> str:
    """``("SLOs", "upper", 0, "limit")`` as ``SLOs.upper[0].limit``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def validation_problems(exc: ValidationError, prefix: str = "") -> list[str]:
    """One line per pydantic error, in words a YAML author understands."""
    lines = []
    for error in exc.errors(include_url=False):
        where = format_loc(error["loc"])
        kind = error["type"]
        if kind == "extra_forbidden":
            message = "unknown field"
        elif kind == "missing":
            message = "required field is missing"
        elif kind in {"duration", "value_error", "command"}:
            message = error["msg"].removeprefix("Value error, ")
        else:
            message = f"{error['msg'][0].lower()}{error['msg'][1:]} (got {short(error['input'])})"
        lines.append(f"{prefix}{where}: {message}" if where else f"{prefix}{message}")
    return lines


def router_config(
    model: type[C],
    options: Mapping[str, Any] | BaseModel,
    router: str,
    *,
    error: type[UsageError] = UsageError,
) -> C:
    """``options`` (a routemap's ``routing`` keys but ``router`` and ``strategy``) as ``model``, the
    router's ``Config``.

    An instance of ``model`` is already valid and is returned as it is; another model is dumped (by
    alias, the fields set) and validated again.

    :raises error: one line naming each bad field: ``router NAME: routing.<field>: <problem>; ...``.
    """
    if isinstance(options, model):
        return options
    if isinstance(options, BaseModel):
        options = options.model_dump(by_alias=True, exclude_unset=True)
    try:
        return model.model_validate(dict(options))
    except ValidationError as exc:
        raise error(f"router {router}: " + "; ".join(validation_problems(exc, "routing."))) from None
