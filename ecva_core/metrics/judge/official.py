"""The official ECVA judge prompts, read at run time from the user's own checkout of the official code.

The official repository publishes no licence, so its prompt wordings are never stored in this
project: ``--protocol official`` reads them from ``AnomEval/evaluating_system_v2/config.py`` of the
folder ``ECVA_OFFICIAL_REPO`` names. The file is parsed with :mod:`ast`, never imported or executed:
only module-level assignments of a plain string (``NAME = '''...'''``) are read, and everything else
in it (API keys, URLs) is ignored.

A short hash of each prompt's text is part of its prompt version (stored with each score and part
of the judge-cache key), so verdicts made with one checkout's wording are never reused for another's.
"""

from __future__ import annotations

import ast
import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

from ecva_core.config import OFFICIAL_REPO_ENV, official_repo
from ecva_core.errors import ConfigError
from ecva_core.metrics.protocol import OFFICIAL_JUDGE_MODEL

OFFICIAL_REPO_URL = "https://github.com/Dulpy/ECVA"
PROMPTS_FILE = Path("AnomEval", "evaluating_system_v2", "config.py")
# The official agents' system prompts, by the names the official file gives them.
TEXT_MATCHING = "PROMPT_FOR_TEXT_MATCHING"
LOGIC_CHECKING = "PROMPT_FOR_LOGIC_CHECKING"
KEY_INFORMATION_CHECKING = "PROMPT_FOR_KEY_INFOMATION_CHECKING"  # the official spelling
REASONING_ABILITY_CHECKING = "PROMPTS_FOR_REASONING_ABILITY_CHECKING"
PROMPT_NAMES: tuple[str, ...] = (TEXT_MATCHING, LOGIC_CHECKING, KEY_INFORMATION_CHECKING, REASONING_ABILITY_CHECKING)
MODEL_NAME = "MODEL_TYPE"  # the judge model the official file names, when it names one
DIGEST_CHARS = 12
SETUP_HELP = f"clone {OFFICIAL_REPO_URL} and set {OFFICIAL_REPO_ENV} to it"


@dataclass(frozen=True)
class OfficialPrompts:
    """The official system prompts read from one checkout (by official name), and its ``MODEL_TYPE``."""

    source: Path
    texts: dict[str, str]
    model_type: str | None = None

    def digest(self, name: str) -> str:
        """A short hash of one prompt's text, for its prompt version."""
        return hashlib.sha256(self.texts[name].encode("utf-8")).hexdigest()[:DIGEST_CHARS]

    @property
    def judge_model(self) -> str:
        """The official protocol's judge model: the file's ``MODEL_TYPE``, else the published one."""
        return self.model_type or OFFICIAL_JUDGE_MODEL

    def model_note(self) -> str | None:
        """What to tell the user when the file names another judge model than the published one."""
        if self.model_type is None or self.model_type == OFFICIAL_JUDGE_MODEL:
            return None
        return (
            f"{self.source} sets {MODEL_NAME} = {self.model_type!r}, not the published {OFFICIAL_JUDGE_MODEL!r}; "
            f"the official protocol judges with {self.model_type!r}"
        )


def read_official_prompts(repo: Path | None = None) -> OfficialPrompts:
    """The official prompts of ``repo`` (default: ``ECVA_OFFICIAL_REPO``).

    A missing setting, an unreadable file or a missing prompt is a :class:`ConfigError` naming the
    setting, the expected file and what is missing.
    """
    repo = repo if repo is not None else official_repo()
    if repo is None:
        raise ConfigError(
            f"the official protocol judges with the official ECVA prompts, read from your own checkout of the "
            f"official repository ({PROMPTS_FILE.as_posix()}), and {OFFICIAL_REPO_ENV} is not set: {SETUP_HELP}; "
            "or score with --no-judge (the official BLEU/ROUGE need no checkout)"
        )
    path = repo / PROMPTS_FILE
    try:
        source = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"{OFFICIAL_REPO_ENV}={repo}: cannot read {path} ({exc.strerror or exc}); {SETUP_HELP}"
        ) from exc
    return _parse(path, source)


@functools.lru_cache(maxsize=4)
def _parse(path: Path, source: bytes) -> OfficialPrompts:
    """Parse once per file content: the prompts are asked for with every judge request."""
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        raise ConfigError(f"{path}: not valid Python (line {exc.lineno}: {exc.msg}); {SETUP_HELP}") from exc
    except ValueError as exc:
        raise ConfigError(f"{path}: not a Python source file ({exc}); {SETUP_HELP}") from exc
    constants = _string_constants(tree)
    missing = [name for name in PROMPT_NAMES if not constants.get(name, "").strip()]
    if missing:
        raise ConfigError(
            f"{path} ({OFFICIAL_REPO_ENV}) lacks {', '.join(missing)}: each must be a module-level assignment "
            f"of a non-empty string (NAME = '''...'''); {SETUP_HELP}"
        )
    return OfficialPrompts(path, {name: constants[name] for name in PROMPT_NAMES}, constants.get(MODEL_NAME))


def _string_constants(tree: ast.Module) -> dict[str, str]:
    """Module-level ``NAME = "..."`` assignments; as when Python runs the file, the last one wins, and a
    name last assigned anything but a plain string (another name, an expression) has no text."""
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        text = value.value if isinstance(value, ast.Constant) and isinstance(value.value, str) else None
        for target in targets:
            if not isinstance(target, ast.Name):
                continue
            if text is None:
                found.pop(target.id, None)
            else:
                found[target.id] = text
    return found
