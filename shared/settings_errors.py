"""Settings that cannot be used, as one line each naming the environment variable.

`holdline` runs every command inside settings_errors(); check_database_url() tells a
database URL SQLAlchemy cannot use before anything connects.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import typer
from pydantic import BaseModel, ValidationError
from pydantic_settings import BaseSettings, SettingsError

from shared.infra import BadSetting, err

if TYPE_CHECKING:
    from shared.settings import ServiceSettings

# pydantic error types whose own message says less than "'abc' is not a valid integer"
_NOT_A = {
    "int_parsing": "a valid integer",
    "int_from_float": "a whole number",
    "float_parsing": "a valid number",
    "bool_parsing": "true or false",
}


def _settings_classes() -> dict[str, type[BaseSettings]]:
    """Every settings class imported so far, by name (a ValidationError names its model)."""
    found: dict[str, type[BaseSettings]] = {}
    todo: list[type[BaseSettings]] = [BaseSettings]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.setdefault(sub.__name__, sub)
            todo.append(sub)
    return found


def _environ() -> dict[str, str]:
    # pydantic-settings matches variable names whatever their case
    return {name.upper(): value for name, value in os.environ.items()}


def setting_variables(settings_cls: type[BaseSettings], field: str) -> list[str]:
    """The environment variables `field` of `settings_cls` is read from, the winning one first:
    the class's own prefix (HOLDLINE_INTAKE_PORT), then the shared one (HOLDLINE_PORT)."""
    from shared.settings import ServiceSettings

    names = [f"{settings_cls.model_config.get('env_prefix') or ''}{field}".upper()]
    if issubclass(settings_cls, ServiceSettings):
        names.append(f"HOLDLINE_{field}".upper())
    return list(dict.fromkeys(names))


def _variable(settings_cls: type[BaseSettings], field: str) -> str:
    """The variable a bad value came from: the first one set, or every candidate when none is."""
    names = setting_variables(settings_cls, field)
    env = _environ()
    return next((name for name in names if name in env), " or ".join(names))


def _is_secret(model: type[BaseModel], field: str) -> bool:
    info = model.model_fields.get(field)
    return info is None or "Secret" in repr(info.annotation)


def _problem(error: Any, secret: bool) -> str:
    """One pydantic error as words; a secret's value is never shown."""
    message = str(error["msg"]).removeprefix("Value error, ")
    value = error.get("input")
    if secret or not isinstance(value, str | int | float):
        return message
    if error["type"] in _NOT_A:
        return f"{value!r} is not {_NOT_A[error['type']]}"
    shown = repr(value) in message or re.search(rf"(?<!\S){re.escape(str(value))}(?!\S)", message)
    return message if shown else f"{value!r}: {message}"


def settings_problems(exc: ValidationError) -> list[str] | None:
    """One line per problem of a settings class that could not be built from the environment,
    each naming its variable; None when `exc` is about some other model."""
    settings_cls = _settings_classes().get(exc.title)
    if settings_cls is None:
        return None
    lines = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        if not loc:  # a check across fields, e.g. a development secret in production
            message = str(error["msg"]).removeprefix("Value error, ")
            field = message.split(" ", 1)[0]
            where = _variable(settings_cls, field) if field in settings_cls.model_fields else ""
            lines.append(f"{where or 'settings'}: {message}")
            continue
        inner = f"{'.'.join(loc[1:])}: " if loc[1:] else ""
        problem = _problem(error, _is_secret(settings_cls, loc[0]))
        lines.append(f"{_variable(settings_cls, loc[0])}: {inner}{problem}")
    return lines


def _unparsable_lines(exc: SettingsError) -> list[str]:
    """A variable whose JSON (a dict or list setting) does not parse."""
    match = re.search(r'field "(\w+)"', str(exc))
    if not match:
        return [f"settings: {exc}"]
    field = match.group(1)
    env = _environ()
    names = {
        name
        for cls in _settings_classes().values()
        if field in cls.model_fields
        for name in setting_variables(cls, field)
        if name in env
    }
    lines = []
    for name in sorted(names):
        try:
            json.loads(env[name])
        except ValueError as error:
            lines.append(f"{name}: not valid JSON ({error})")
    return lines or [f"settings: {field}: cannot parse its value ({exc.__cause__ or exc})"]


def check_database_url(settings: ServiceSettings) -> None:
    """A BadSetting naming the variable unless `database_url` is a URL SQLAlchemy can use with
    asyncio (the value is not shown: it may hold a password)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    name = _variable(type(settings), "database_url")
    example = "e.g. postgresql+asyncpg://user:password@host:5432/db or sqlite+aiosqlite:///path"
    try:
        url = make_url(settings.database_url)
        dialect = url.get_dialect(_is_async=True)  # as create_async_engine picks it
    except NoSuchModuleError:  # an ArgumentError too
        raise BadSetting(f"{name}: no database driver {url.drivername!r} ({example})") from None
    except ArgumentError:
        raise BadSetting(f"{name}: not a database URL ({example})") from None
    if not dialect.is_async:
        raise BadSetting(f"{name}: {url.drivername!r} is not an asyncio driver ({example})")
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        raise BadSetting(
            f"{name}: the driver of {url.drivername!r} is not installed ({exc})"
        ) from None


@contextlib.contextmanager
def settings_errors() -> Iterator[None]:
    """A setting that cannot be used becomes one red line per problem, naming the environment
    variable, and exit status 2: services/cli.py runs every `holdline` command inside this."""
    try:
        yield
    except BadSetting as exc:
        lines = [str(exc)]
    except SettingsError as exc:
        lines = _unparsable_lines(exc)
    except ValidationError as exc:
        found = settings_problems(exc)
        if found is None:
            raise
        lines = found
    else:
        return
    for line in lines:
        err.print(line, style="red")
    raise typer.Exit(2)
