"""Docs that cannot go stale: every command line the README and docs/ show still composes, every `make` target
they name exists, and every docs section that code, a config or an experiment README points at exists.

A command is checked the way its app reads it, in-process (a subprocess per command would cost seconds each):
a Hydra app (its ``main`` is decorated with ``hydra.main``) composes its config with the documented overrides
(``-m``, ``--cfg job`` and ``--help`` dropped; a sweep's ``a=1,2`` composed once per listed value), and the
training config also passes the range checks; any other command's argument parser parses the documented
arguments, without running the command (one named without arguments answers ``--help``).
"""

from __future__ import annotations

import argparse
import ast
import importlib
import re
import shlex
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from cyclesem.runtime.config import validate
from tests.conftest import REPO, compose_config

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# [project.scripts] of pyproject.toml: console script → "module:main" (read without tomllib, which 3.10 lacks)
SCRIPTS = dict(re.findall(r'^(cyclesem-[\w-]+) = "([\w.:]+)"$', (REPO / "pyproject.toml").read_text(), flags=re.MULTILINE))
FLAGS_DROPPED = {"-m", "--multirun", "--help", "-h", "--resolve"}
FLAGS_WITH_VALUE_DROPPED = {"--cfg", "-c", "--package", "-p", "--info", "-i"}


@dataclass(frozen=True)
class Command:
    where: str  # page:line
    module: str  # cyclesem.train, cyclesem.report.__main__, …
    args: tuple[str, ...]


def _command(where: str, text: str) -> Command | None:
    """A command line → its module and arguments; None when the line runs no cyclesem command."""
    try:
        words = shlex.split(text, comments=True)
    except ValueError as err:
        raise AssertionError(f"{where}: the shell cannot split {text!r} ({err})") from None
    for i, word in enumerate(words):
        if word.endswith("python") and words[i + 1:i + 2] == ["-m"] and len(words) > i + 2:
            module, args = words[i + 2], words[i + 3:]
        elif re.fullmatch(r"cyclesem-[a-z-]+", word):
            assert word in SCRIPTS, f"{where}: {word} is not a console script of pyproject.toml"
            module, args = SCRIPTS[word].split(":")[0], words[i + 1:]
        else:
            continue
        if not module.startswith("cyclesem.") or "<" in module or "…" in module:  # cyclesem.<name>: a pattern
            return None
        return Command(where, module, tuple(a for a in args if a not in ("…", "...")))  # "…": arguments elided
    return None


def documented_commands() -> list[Command]:
    """Every command line of the pages: in code blocks (a trailing backslash continues the line) and in inline
    code spans."""
    commands = []
    for page in PAGES:
        name, lines = page.relative_to(REPO).as_posix(), page.read_text().splitlines()
        in_block, pending, start = False, "", 0
        for number, line in enumerate(lines, 1):
            if line.lstrip().startswith("```"):
                in_block = not in_block
                continue
            if in_block:
                pending, start = (pending + " " + line.rstrip("\\"), start) if pending else (line.rstrip("\\"), number)
                if line.rstrip().endswith("\\"):
                    continue
                spans, pending = [pending], ""
            else:
                spans, start = re.findall(r"`([^`]+)`", line), number
            for span in spans:
                if re.search(r"python -m cyclesem\.|(^|\s)cyclesem-[a-z]", span):
                    command = _command(f"{name}:{start}", span)
                    if command is not None:
                        commands.append(command)
    return commands


COMMANDS = documented_commands()


def module_file(module: str) -> Path:
    path = REPO / Path(*module.split("."))
    return path.with_suffix(".py") if path.with_suffix(".py").is_file() else path / "__main__.py"


def module_name(module: str) -> str:
    """The module that defines the main() ``python -m <module>`` runs: a package runs its __main__, which may
    import main from a module beside it (``from cyclesem.data.synthetic.pair import main``)."""
    name = f"{module}.__main__" if module_file(module).name == "__main__.py" else module
    tree = ast.parse(module_file(module).read_text())
    if any(isinstance(n, ast.FunctionDef) and n.name == "main" for n in tree.body):
        return name
    imported = [n.module for n in tree.body if isinstance(n, ast.ImportFrom) and n.module
                and any(alias.name == "main" for alias in n.names)]
    assert imported, f"{module} has no main()"
    return imported[0]


def hydra_config_name(module: str) -> str | None:
    """The config a module's ``main`` composes (``@hydra.main(config_name=...)``), None for a plain main."""
    source = REPO / Path(*module_name(module).split(".")).with_suffix(".py")
    tree = ast.parse(source.read_text())
    main = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main"), None)
    assert main is not None, f"{module} has no main()"
    for decorator in main.decorator_list:
        if isinstance(decorator, ast.Call) and ast.unparse(decorator.func) == "hydra.main":
            return next(k.value.value for k in decorator.keywords if k.arg == "config_name")
    return None


def overrides_to_compose(args: tuple[str, ...]) -> list[list[str]]:
    """The documented overrides as compose() takes them: flags dropped, and a sweep ``a=1,2`` as one override
    list per listed value (the others at their first value)."""
    kept, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in FLAGS_WITH_VALUE_DROPPED:
            skip = True
        elif arg not in FLAGS_DROPPED:
            kept.append(arg)
    parsed = OverridesParser.create().parse_overrides(kept)
    values = [list(o.sweep_string_iterator()) if o.is_sweep_override() else [None] for o in parsed]
    first = [o.input_line if v == [None] else f"{o.get_key_element()}={v[0]}" for o, v in zip(parsed, values, strict=True)]
    variants = [first]
    for i, (override, listed) in enumerate(zip(parsed, values, strict=True)):
        for value in listed[1:]:
            variants.append([*first[:i], f"{override.get_key_element()}={value}", *first[i + 1:]])
    return variants


class Parsed(Exception):
    """Raised by the patched parse_args once the documented arguments parsed: the command does not run."""


def check_arguments(module: str, args: tuple[str, ...], monkeypatch: pytest.MonkeyPatch) -> None:
    original = argparse.ArgumentParser.parse_args

    def parse_only(self, args=None, namespace=None):
        original(self, args, namespace)
        raise Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_only)
    args = args or ("--help",)  # the prose names the command without arguments: it answers --help
    main = importlib.import_module(module_name(module)).main
    with pytest.raises((Parsed, SystemExit)) as stopped:
        main(list(args))
    if stopped.type is SystemExit:  # argparse exits 2 on bad arguments, 0 after --help
        assert stopped.value.code == 0, f"the documented arguments {args} do not parse"


def test_the_docs_show_many_commands_and_each_command_once_checked() -> None:
    modules = {c.module for c in COMMANDS}
    print(f"checked {len(COMMANDS)} documented command lines of {len(modules)} commands")
    assert len(COMMANDS) >= 70
    assert {"cyclesem.train", "cyclesem.evaluate", "cyclesem.predict", "cyclesem.export", "cyclesem.stylize",
            "cyclesem.figure", "cyclesem.translation_figure", "cyclesem.reference", "cyclesem.report",
            "cyclesem.bench", "cyclesem.data.prepare"} <= modules


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: f"{c.where} {c.module}")
def test_documented_command_composes(command: Command, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert module_file(command.module).is_file(), f"{command.where}: no module {command.module}"
    config_name = hydra_config_name(command.module)
    if config_name is None:
        check_arguments(command.module, command.args, monkeypatch)
        return
    for overrides in overrides_to_compose(command.args):
        try:
            cfg = compose_config(config_name, overrides, tmp_path)
            if config_name == "train":
                validate(cfg)
        except Exception as err:
            raise AssertionError(f"{command.where}: python -m {command.module} {' '.join(overrides)} does not "
                                 f"compose: {type(err).__name__}: {err}") from None


def make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][\w-]*):", (REPO / "Makefile").read_text(), flags=re.MULTILINE))


def test_every_documented_make_target_exists() -> None:
    named = {(page.name, target) for page in PAGES
             for target in re.findall(r"(?:^|[`\s])make ([a-z][\w-]*)", page.read_text(), flags=re.MULTILINE)}
    assert len(named) >= 10
    assert not {t for t in named if t[1] not in make_targets()}, sorted(t for t in named if t[1] not in make_targets())


def slug(heading: str) -> str:
    """A heading's anchor as MkDocs (Python-Markdown's toc) makes it; GitHub agrees for plain ASCII headings."""
    text = re.sub(r"`([^`]*)`", r"\1", heading)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[-\s]+", "-", re.sub(r"[^\w\s-]", "", text).strip().lower())


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
    return {slug(m) for m in re.findall(r"^#+ (.+)$", text, flags=re.MULTILINE)}


# where code, configs and the experiments point readers: the package, the configs, the Makefile, CI, the tests and
# every markdown file under experiments/
POINTERS = [*(REPO / "cyclesem").rglob("*.py"), *(REPO / "conf").rglob("*.yaml"), REPO / "Makefile",
            REPO / ".ci" / "run", *(REPO / "tests").rglob("*.py"), *(REPO / "experiments").rglob("*.md")]
DOCS_REFERENCE = re.compile(r"docs/([\w-]+\.md)(?:#([\w-]+))?")
README_SECTION = re.compile(r"README(?:['’]s)?,? \"([^\"]+)\"|see README\b(?!\.md|['’]s|,? \")|README, [A-Z]")


def test_every_docs_section_that_code_names_exists() -> None:
    checked = 0
    for path in POINTERS:
        if path == Path(__file__):
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            where = f"{path.relative_to(REPO)}:{number}"
            for page, anchor in DOCS_REFERENCE.findall(line):
                target = REPO / "docs" / page
                assert target.is_file(), f"{where} names docs/{page}, which does not exist"
                assert not anchor or anchor in anchors(target), f"{where}: docs/{page} has no section #{anchor}"
                checked += 1
            for match in README_SECTION.finditer(line):
                section = match.group(1)
                assert section is not None, f"{where} points at the README without naming a section: {line.strip()}"
                assert slug(section) in anchors(REPO / "README.md"), f"{where}: README has no section {section!r}"
                checked += 1
    assert checked >= 10


def test_the_readme_cheat_sheet_has_every_console_script() -> None:
    readme = {c.module for c in COMMANDS if c.where.startswith("README.md:")}
    scripts = {target.split(":")[0].removesuffix(".__main__") for target in SCRIPTS.values()}
    assert len(scripts) >= 7
    assert not scripts - readme, f"console scripts missing from the README's commands: {sorted(scripts - readme)}"
