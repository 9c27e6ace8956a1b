"""Config helpers every layer may use (the bottom of ``experiments/``, next to ``errors.py``): ``plain``, the
config's schema (``schema``: typed dataclasses in Hydra's ConfigStore, registered on import) and the checks that
turn any key the schema lacks, or any value of the wrong type, into one line naming it and the valid keys nearby
(``check_config`` on a composed config, ``config_error_line`` on Hydra's own composition errors)."""
from __future__ import annotations

import dataclasses
import difflib
from typing import Any, List, Optional

from omegaconf import DictConfig, OmegaConf

from ..errors import StarbenchError
from . import schema

schema.register()

# Config groups that are parts other options are built from, not choices: the typed schema, the protocol's shared
# settings (its presets pick them), the per-task piece of debug=fast (picked by the task), Hydra's own.
HIDDEN_GROUPS = ("hydra", "schema", "protocol", "debug/task")
HELP_RESOLVER = "starbench_config_groups"


def config_groups_help() -> str:
    """The config groups a user chooses from, one line each (``group: option, ...``) as Hydra's ``--help`` lists
    them, without ``HIDDEN_GROUPS``; the options on ``hydra.searchpath`` included. conf/hydra/starbench.yaml's help
    template calls it (``${starbench_config_groups:}``) in place of Hydra's ``$APP_CONFIG_GROUPS``."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.object_type import ObjectType
    if not GlobalHydra.instance().is_initialized():  # a config resolved outside Hydra's app: no groups to list
        return ""
    loader = GlobalHydra.instance().config_loader()

    def groups(parent: str = "") -> List[str]:
        found: List[str] = []
        for group in loader.list_groups(parent):
            name = f"{parent}/{group}" if parent else group
            if name in HIDDEN_GROUPS:
                continue
            if loader.get_group_options(name, ObjectType.CONFIG):
                found.append(name)
            found += groups(name)
        return found

    return "\n".join(f"{g}: {', '.join(sorted(loader.get_group_options(g, ObjectType.CONFIG)))}"
                     for g in sorted(groups()))


OmegaConf.register_new_resolver(HELP_RESOLVER, config_groups_help, replace=True)


def plain(value: Any) -> Any:
    """An OmegaConf node as plain Python (interpolations resolved), a tuple as a list, anything else as is:
    what a model constructor, a YAML dump or a JSON record wants."""
    if OmegaConf.is_config(value):
        return OmegaConf.to_container(value, resolve=True)
    return list(value) if isinstance(value, tuple) else value


def _schema_of(node: DictConfig) -> Optional[type]:
    kind = node._metadata.object_type
    return kind if kind is not None and dataclasses.is_dataclass(kind) else None


def unknown_key_message(full_key: str, valid: List[str]) -> str:
    """``unknown config key trainer.epoch (did you mean trainer.epochs?); valid keys in trainer: ...``"""
    parent, _, key = full_key.rpartition(".")
    prefix = f"{parent}." if parent else ""
    near = difflib.get_close_matches(key, valid, n=1)
    hint = f" (did you mean {prefix}{near[0]}?)" if near else ""
    where = f"in {parent}" if parent else "at the top level"
    return f"unknown config key {full_key}{hint}; valid keys {where}: {', '.join(sorted(valid))}"


def check_config(cfg: DictConfig) -> None:
    """Every key of a composed config is one its schema declares. Hydra enforces the schema while composing, except
    for keys added with ``+`` (``+trainer.epoch=3``, the form Hydra's own error message suggests), which it lets
    into the typed node: those are refused here, before a run dir is touched."""
    if _schema_of(cfg) is None:
        raise StarbenchError("this config was composed without starbench's schema: import experiments.config "
                             "before composing conf/ (conf/config.yaml names starbench_schema first)")

    def walk(node: DictConfig, prefix: str) -> None:
        kind = _schema_of(node)
        if kind is not None:
            valid = [f.name for f in dataclasses.fields(kind)]
            for key in node.keys():
                if key not in valid and not (prefix == "" and key == "hydra"):
                    raise StarbenchError(unknown_key_message(f"{prefix}{key}", valid))
        for key in node.keys():
            if key == "hydra" and prefix == "":
                continue
            child = node._get_node(key)
            if isinstance(child, DictConfig) and not child._is_missing() and not child._is_none():
                walk(child, f"{prefix}{key}.")

    walk(cfg, "")


def config_error_line(exc: BaseException) -> Optional[str]:
    """Hydra's or OmegaConf's error while composing the config, as one line (None: not a config error).
    An unknown key names the valid keys beside it; a wrong type names the key and the value."""
    from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException, ValidationError

    chain, seen = [], set()
    e: Optional[BaseException] = exc
    while e is not None and id(e) not in seen:
        chain.append(e)
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    for e in chain:
        if isinstance(e, OverrideParseException):
            return override_parse_line(e.override, e.message)
        if isinstance(e, (ConfigKeyError, ConfigAttributeError)) and getattr(e, "full_key", None):
            kind = getattr(e, "object_type", None)
            valid = [f.name for f in dataclasses.fields(kind)] if kind and dataclasses.is_dataclass(kind) else []
            if valid:
                return unknown_key_message(e.full_key, valid)
        if isinstance(e, ValidationError) and getattr(e, "full_key", None):
            return f"bad value for {e.full_key}: {str(e.msg).strip().splitlines()[0]}"
    if isinstance(exc, MissingConfigException):
        return _missing_config_line(exc)
    if isinstance(exc, (ConfigCompositionException, OmegaConfBaseException)):
        first = chain[-1]
        text = str(getattr(first, "msg", None) or first)
        return " ".join(line.strip() for line in text.splitlines() if line.strip()
                        and not line.strip().startswith(("full_key:", "object_type=", "reference_type=")))
    return None


def override_parse_line(override: str, message: str) -> str:
    """Hydra's parse error of one command-line override (its grammar, its caret under the character it stopped at)
    as one line that says how to write it: ``key=value``, and a value Hydra's grammar does not take bare (spaces,
    non-ASCII letters, quotes, brackets) in quotes, which the shell must pass through (single quotes around it all)."""
    if "=" not in override.lstrip("+~"):
        return (f"cannot parse the override '{override}': an override is key=value (op=star, trainer.epochs=2; "
                "in a multirun key=a,b) or group=option (model=starnet)")
    lines = message.splitlines()
    prefix = "LexerNoViableAltException: "
    where = ""
    if len(lines) > 1 and lines[0].startswith(prefix) and lines[1].strip() == "^":
        pos = len(lines[1]) - 1 - len(prefix)  # Hydra's caret, under the override after the prefix
        if 0 <= pos < len(override):
            where = f" (it stops at {override[pos]!r}, character {pos + 1})"
    elif lines and not lines[0].startswith(("Error parsing override", prefix)):
        where = f" ({lines[0].strip()})"
    key, _, value = override.partition("=")
    example = f": '{key}=\"{value}\"'" if where.startswith(" (it stops at") else ""
    return (f"cannot parse the override '{override}'{where}; a value with spaces, non-ASCII letters, quotes or "
            f"brackets goes in quotes, and the whole override in single quotes for the shell{example}")


def _missing_config_line(exc: BaseException) -> str:
    """``Could not find 'experiment/nope'`` + Hydra's list of options -> ``unknown experiment 'nope'; valid: ...``"""
    import re
    text = str(exc)
    found = re.search(r"Could not find '([^']+)'", text)
    options = getattr(exc, "options", None) or []
    if found and "/" in found.group(1):
        group, _, name = found.group(1).rpartition("/")
        valid = f"; valid: {', '.join(sorted(options))}" if options else ""
        return f"unknown {group} '{name}'{valid} (the config search path: conf/ and hydra.searchpath)"
    return " ".join(line.strip() for line in text.splitlines() if line.strip() and "provider=" not in line
                    and not line.startswith("Config search path"))
