"""The two scoring protocols and the two readings of the hallucination pillar, named in one place.

- ``default``: this tool's protocol: our judge prompts (JSON verdicts) at temperature 0, BLEU
  and ROUGE with the expert answer as the reference and normalised tokens.
- ``official``: the official ECVA code's computation where a user needs the paper's numbers:
  its judge model and prompt wordings (read from the user's checkout of the official repository,
  :mod:`ecva_core.metrics.judge.official`), its reply formats and scales, and BLEU/ROUGE computed as
  its ``eval_bleu_rouge.py`` computes them (stored as ``bleu_official`` / ``rougeL_official``).

A judge score records which protocol made it through its prompt version (stored with the score
and part of the judge-cache key); the official text metrics carry it in their names.
"""

from __future__ import annotations

DEFAULT = "default"
OFFICIAL = "official"
PROTOCOLS: tuple[str, ...] = (DEFAULT, OFFICIAL)
PROTOCOL_LABELS: dict[str, str] = {
    DEFAULT: "this tool's (our judge prompts at temperature 0, reference-first BLEU/ROUGE)",
    OFFICIAL: "official ECVA (official judge model and prompts from ECVA_OFFICIAL_REPO, bleu/rougeL_official)",
}
OFFICIAL_JUDGE_MODEL = "gpt-4o"  # MODEL_TYPE of the official AnomEval config (a checkout's own value wins)
OFFICIAL_PROMPT_PREFIX = "official-"
OFFICIAL_TEXT_METRICS: tuple[str, ...] = ("bleu_official", "rougeL_official")

ABSTENTION = "abstention"
PAIR = "pair"
HALLUCINATION_READINGS: tuple[str, ...] = (ABSTENTION, PAIR)
READING_LABELS: dict[str, str] = {
    ABSTENTION: "abstention on the probe answer (the official code's reading)",
    PAIR: "probe answer vs normal answer (the paper's figure: with vs without key frames)",
}


def check_protocol(protocol: str) -> str:
    """``protocol`` when it is known; an unknown name is a programming error (the CLI offers a choice)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, not {protocol!r}")
    return protocol


def check_reading(reading: str) -> str:
    """``reading`` when it is a known hallucination reading."""
    if reading not in HALLUCINATION_READINGS:
        raise ValueError(f"hallucination reading must be one of {', '.join(HALLUCINATION_READINGS)}, not {reading!r}")
    return reading


def protocol_of(prompt_version: str) -> str:
    """The protocol a stored judge score was made under, from its prompt version ("" when not recorded)."""
    if not prompt_version:
        return ""
    return OFFICIAL if prompt_version.startswith(OFFICIAL_PROMPT_PREFIX) else DEFAULT
