"""The Code of Connection catalogue: its model, loading and validation.

A catalogue is versioned data: the one shipped with gcx lives in
``catalogues/*.yaml`` beside this module, and an operator may publish a new
version through central. Either way it passes :func:`parse_catalogue`, which
refuses anything a statement could later trip over: duplicate or malformed
ids, controls in unknown areas, scripted choices that compute no valid result,
and mappings to Cyber Essentials requirements or NCSC CAF contributing
outcomes that do not exist. A catalogue that loads is one every rule in
:mod:`gcx.compliance.rules` can rely on.

Nothing here reads the clock or touches the network; :func:`builtin_catalogue`
reads one packaged file.
"""

from __future__ import annotations

import hashlib
import re
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from gcx.errors import CatalogueInvalid

FORMAT = "gcx.coco-catalogue/1"
BUILTIN_VERSION = "2026.1"

_CONTROL_ID = re.compile(r"^[A-Z]{2,6}-\d{2,3}$")
_AREA_ID = re.compile(r"^[A-Z]{2,6}$")
_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,39}$")

# The five technical control themes of Cyber Essentials.
CYBER_ESSENTIALS = frozenset(
    {
        "firewalls",
        "secure-configuration",
        "security-update-management",
        "user-access-control",
        "malware-protection",
    }
)

# NCSC Cyber Assessment Framework (v3.2) contributing outcomes, by identifier.
CAF_OUTCOMES = frozenset(
    [
        "A1.a",
        "A1.b",
        "A1.c",
        "A2.a",
        "A2.b",
        "A3.a",
        "A4.a",
        "B1.a",
        "B1.b",
        "B2.a",
        "B2.b",
        "B2.c",
        "B2.d",
        "B3.a",
        "B3.b",
        "B3.c",
        "B3.d",
        "B3.e",
        "B4.a",
        "B4.b",
        "B4.c",
        "B4.d",
        "B5.a",
        "B5.b",
        "B5.c",
        "B6.a",
        "B6.b",
        "C1.a",
        "C1.b",
        "C1.c",
        "C1.d",
        "C1.e",
        "C2.a",
        "C2.b",
        "D1.a",
        "D1.b",
        "D1.c",
        "D2.a",
        "D2.b",
    ]
)

# What a gateway's signed self-check report can say something about; controls
# name the checks that supply evidence for them.
SELF_CHECKS = frozenset(
    {
        "tls-versions",
        "tls-cipher-suites",
        "certificate-expiry",
        "clock-skew",
        "software-version",
        "keys-encrypted",
        "admin-second-factor",
    }
)


class Level(StrEnum):
    MUST = "MUST"
    SHOULD = "SHOULD"


class Result(StrEnum):
    """An assessor's finding on one control (also what a scripted choice computes)."""

    COMPLIANT = "compliant"
    PARTIALLY_COMPLIANT = "partially-compliant"
    NON_COMPLIANT = "non-compliant"
    NOT_APPLICABLE = "not-applicable"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Area(_Model):
    id: str
    title: str


class Choice(_Model):
    value: str = Field(min_length=1, max_length=40)
    label: str = Field(min_length=1)
    result: Result


class ScriptedAnswer(_Model):
    question: str = Field(min_length=1)
    options: tuple[Choice, ...] = Field(min_length=2)

    @model_validator(mode="after")
    def _distinct_values(self) -> ScriptedAnswer:
        values = [o.value for o in self.options]
        if len(set(values)) != len(values):
            raise ValueError("answer choices must have distinct values")
        return self

    def result_for(self, value: str) -> Result | None:
        return next((o.result for o in self.options if o.value == value), None)


class Mapping(_Model):
    ref: str
    coverage: Literal["full", "partial"]


class Mappings(_Model):
    cyber_essentials: tuple[Mapping, ...] = ()
    caf: tuple[Mapping, ...] = ()


class Control(_Model):
    id: str
    area: str
    level: Level
    title: str = Field(min_length=1, max_length=200)
    requirement: str = Field(min_length=1)
    guidance: str = Field(min_length=1)
    model_answer: str = Field(min_length=1)
    assessor_guidance: str = Field(min_length=1)
    evidence: tuple[str, ...] = Field(min_length=1)
    choices: ScriptedAnswer | None = None
    self_checks: tuple[str, ...] = ()
    maps: Mappings

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    def unchosen(self, answer: dict[str, Any] | None) -> bool:
        """Whether ``answer`` leaves this control's structured question without a choice.

        A control with answer choices is answered by the choice (the assessor and
        the scripted result read it); text alone leaves it unanswered, however
        much there is, so such an answer is not counted and blocks sign-off.
        """
        return answer is not None and self.choices is not None and not answer.get("choice")

    def answered_by(self, answer: dict[str, Any] | None) -> bool:
        """Whether ``answer`` (as stored: text, choice, …) counts as answering this control."""
        return answer is not None and not self.unchosen(answer)


class Catalogue(_Model):
    format: Literal["gcx.coco-catalogue/1"]
    version: str
    title: str
    published: str
    areas: tuple[Area, ...] = Field(min_length=1)
    controls: tuple[Control, ...] = Field(min_length=1)
    _index: dict[str, Control] = PrivateAttr(default_factory=dict)

    @property
    def control_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.controls)

    def control(self, control_id: str) -> Control | None:
        # Catalogues are frozen, so the index is built once per instance.
        if not self._index:
            self._index.update({c.id: c for c in self.controls})
        return self._index.get(control_id)

    def controls_for_self_check(self, check: str) -> tuple[str, ...]:
        return tuple(c.id for c in self.controls if check in c.self_checks)

    def summary(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "title": self.title,
            "published": self.published,
            "controls": len(self.controls),
            "must": sum(1 for c in self.controls if c.level is Level.MUST),
            "should": sum(1 for c in self.controls if c.level is Level.SHOULD),
            "areas": [{"id": a.id, "title": a.title} for a in self.areas],
        }


def _problems(catalogue: Catalogue) -> list[str]:
    problems: list[str] = []
    if not _VERSION.match(catalogue.version):
        problems.append(f"version {catalogue.version[:40]!r} is not a short version label")
    area_ids = [a.id for a in catalogue.areas]
    if len(set(area_ids)) != len(area_ids):
        problems.append("two areas share an id")
    problems += [f"area id {a!r} is malformed" for a in area_ids if not _AREA_ID.match(a)]
    seen: set[str] = set()
    for control in catalogue.controls:
        where = f"control {control.id[:20]!r}"
        if not _CONTROL_ID.match(control.id):
            problems.append(f"{where}: the id must look like AREA-01")
        if control.id in seen:
            problems.append(f"{where}: the id is used twice")
        seen.add(control.id)
        if control.area not in area_ids:
            problems.append(f"{where}: area {control.area!r} is not declared")
        elif not control.id.startswith(control.area + "-"):
            problems.append(f"{where}: the id must start with its area {control.area}")
        problems += [
            f"{where}: {m.ref!r} is not a Cyber Essentials requirement"
            for m in control.maps.cyber_essentials
            if m.ref not in CYBER_ESSENTIALS
        ]
        problems += [
            f"{where}: {m.ref!r} is not an NCSC CAF contributing outcome"
            for m in control.maps.caf
            if m.ref not in CAF_OUTCOMES
        ]
        problems += [
            f"{where}: {check!r} is not a gateway self-check"
            for check in control.self_checks
            if check not in SELF_CHECKS
        ]
        if not control.maps.caf and not control.maps.cyber_essentials:
            problems.append(f"{where}: it maps to neither Cyber Essentials nor the CAF")
    return problems


def parse_catalogue(text: str | bytes) -> Catalogue:
    """Validate a catalogue document (YAML, of which JSON is a subset) and return it."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CatalogueInvalid(f"The catalogue is not valid YAML: {exc}"[:300]) from exc
    except RecursionError as exc:
        # PyYAML composes nested collections recursively; a hostile document is refused.
        raise CatalogueInvalid("The catalogue is nested too deeply to be a catalogue.") from exc
    if not isinstance(raw, dict):
        raise CatalogueInvalid("The catalogue must be a mapping with format, version and controls.")
    if raw.get("format") != FORMAT:
        raise CatalogueInvalid(f"The catalogue's format must be {FORMAT!r}.")
    try:
        catalogue = Catalogue.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise CatalogueInvalid(
            f"The catalogue does not validate at {where}: {first['msg']}"[:300],
            errors=exc.error_count(),
        ) from exc
    problems = _problems(catalogue)
    if problems:
        raise CatalogueInvalid(
            f"The catalogue has {len(problems)} problem(s); the first: {problems[0]}.",
            problems=problems[:20],
        )
    return catalogue


def catalogue_digest(text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()


def builtin_catalogue_text() -> str:
    """The text of the catalogue shipped with this release of gcx."""
    files = resources.files("gcx.compliance") / "catalogues"
    return (files / f"gcx-coco-{BUILTIN_VERSION}.yaml").read_text(encoding="utf-8")


@cache
def builtin_catalogue() -> Catalogue:
    return parse_catalogue(builtin_catalogue_text())


def to_oscal_catalog(catalogue: Catalogue, *, uuid_namespace: str) -> dict[str, Any]:
    """The catalogue as an OSCAL 1.1 catalog (JSON model), for tools that speak OSCAL."""
    import uuid

    namespace = uuid.uuid5(uuid.NAMESPACE_URL, uuid_namespace)

    def part(control: Control, name: str, prose: str) -> dict[str, Any]:
        return {"id": f"{control.id.lower()}_{name}", "name": name, "prose": prose}

    groups = []
    for area in catalogue.areas:
        controls = []
        for c in (c for c in catalogue.controls if c.area == area.id):
            props: list[dict[str, Any]] = [{"name": "label", "value": c.id}]
            props.append({"name": "level", "value": c.level.value, "ns": "urn:gcx:coco"})
            props += [
                {
                    "name": "cyber-essentials",
                    "value": m.ref,
                    "class": m.coverage,
                    "ns": "urn:gcx:coco",
                }
                for m in c.maps.cyber_essentials
            ]
            props += [
                {"name": "ncsc-caf", "value": m.ref, "class": m.coverage, "ns": "urn:gcx:coco"}
                for m in c.maps.caf
            ]
            controls.append(
                {
                    "id": c.id.lower(),
                    "title": c.title,
                    "props": props,
                    "parts": [
                        part(c, "statement", c.requirement),
                        part(c, "guidance", c.guidance),
                        part(c, "assessment-objective", c.assessor_guidance),
                        part(c, "model-answer", c.model_answer),
                    ],
                }
            )
        groups.append({"id": area.id.lower(), "title": area.title, "controls": controls})
    return {
        "catalog": {
            "uuid": str(uuid.uuid5(namespace, f"catalog/{catalogue.version}")),
            "metadata": {
                "title": catalogue.title,
                "last-modified": f"{catalogue.published}T00:00:00Z",
                "version": catalogue.version,
                "oscal-version": "1.1.2",
            },
            "groups": groups,
        }
    }
