"""``mmbench new KIND NAME``: write a pip-installable plugin package from string templates.

The templates are package data beside this module (``*.tmpl``, ``string.Template`` with
``$name``-style fields), one file per generated file plus one plugin class and one suite
per kind. The package they make passes its own tests untouched: the test calls
``mmbench.testing.check_plugin`` and runs the suite.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from string import Template

from mmbench.errors import UserError

KINDS = ("dataset", "encoder", "alignment", "fusion", "reporter")
NAME = re.compile(r"^[a-z][a-z0-9_]*$")
#: the plugin base class and hook per kind
BASES = {"dataset": "Dataset", "encoder": "Encoder", "alignment": "Alignment", "fusion": "Fusion",
         "reporter": "Reporter"}


def new_package(kind: str, name: str, folder: Path) -> Path:
    """Write ``folder/mmbench-NAME/`` for a plugin of ``kind`` named ``name``; return it.
    Refuses to overwrite an existing folder."""
    if kind not in KINDS:
        raise UserError(f"unknown plugin kind {kind!r}; one of {', '.join(KINDS)}")
    if not NAME.match(name):
        raise UserError(f"plugin name {name!r}: use lower-case letters, digits and underscores, starting "
                        "with a letter (it is the name suites use and part of the import name)")
    root = Path(folder) / f"mmbench-{name}"
    if root.exists():
        raise UserError(f"{root} already exists; choose another name or --dir, or remove it")
    fields = {
        "name": name,
        "kind": kind,
        "package": f"mmbench_{name}",
        "dist": f"mmbench-{name}",
        "class_name": "".join(part.capitalize() for part in name.split("_")) or "Plugin",
        "base": BASES[kind],
        "hook": f"mmbench_register_{kind}s",
    }
    files = {
        "pyproject.toml": "pyproject.toml.tmpl",
        "README.md": "README.md.tmpl",
        "suite.toml": f"suite_{kind}.toml.tmpl",
        f"src/{fields['package']}/__init__.py": "init.py.tmpl",
        f"src/{fields['package']}/plugin.py": f"{kind}.py.tmpl",
        f"tests/test_{name}.py": "test_plugin.py.tmpl",
    }
    templates = resources.files(__package__)
    for target, template in files.items():
        path = root / target
        path.parent.mkdir(parents=True, exist_ok=True)
        text = Template(templates.joinpath(template).read_text(encoding="utf-8")).substitute(fields)
        path.write_text(text, encoding="utf-8")
    return root
