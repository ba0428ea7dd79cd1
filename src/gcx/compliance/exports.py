"""Exports of a statement with its assessment, and of the network report.

The input is the plain view central builds (``statement_view``-shaped
dictionaries); the output is bytes in the chosen format. CSV for people with
spreadsheets, JSON for programs, and OSCAL 1.1 assessment results for
governance tools that speak OSCAL.

The OSCAL document follows the assessment-results model of OSCAL 1.1 (one
result per assessment, one finding and one observation per control, evidence
as relevant-evidence links by SHA-256). Its identifiers are name-based UUIDs
(version 5) derived from the statement and assessment ids, so exporting the
same statement twice gives the same document.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from typing import Any

OSCAL_VERSION = "1.1.2"
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:gcx:coco")

STATEMENT_COLUMNS = (
    "statement",
    "organisation",
    "catalogue_version",
    "control",
    "area",
    "level",
    "title",
    "choice",
    "answer",
    "plan",
    "plan_target",
    "needs_reconfirmation",
    "evidence_sha256",
    "result",
    "result_reason",
    "assessor",
)

NETWORK_COLUMNS = (
    "organisation",
    "name",
    "type",
    "standing",
    "standing_until",
    "certificate_expires_at",
    "extension_until",
    "open_statement",
    "open_statement_state",
    "overrides",
    "last_selfcheck_at",
)


def _csv(columns: tuple[str, ...], rows: list[dict[str, Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(row.get(k)) for k in columns})
    return buffer.getvalue().encode("utf-8")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value)
    # A cell starting with these is run as a formula by spreadsheet programs;
    # answers are written by people outside central, so neutralise them.
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        text = "'" + text
    return text


def _primary(view: dict[str, Any]) -> dict[str, Any] | None:
    for assessment in view.get("assessments", []):
        if assessment["ordinal"] == 1 and assessment["state"] != "returned":
            return dict(assessment)
    return None


def statement_rows(view: dict[str, Any]) -> list[dict[str, Any]]:
    primary = _primary(view)
    results = primary["results"] if primary else {}
    rows = []
    for control in view["controls"]:
        answer = view["answers"].get(control["id"], {})
        result = results.get(control["id"], {})
        rows.append(
            {
                "statement": view["id"],
                "organisation": view["organisation"],
                "catalogue_version": view["catalogue_version"],
                "control": control["id"],
                "area": control["area"],
                "level": control["level"],
                "title": control["title"],
                "choice": answer.get("choice"),
                "answer": answer.get("answer"),
                "plan": answer.get("plan"),
                "plan_target": answer.get("plan_target"),
                "needs_reconfirmation": answer.get("needs_reconfirmation"),
                "evidence_sha256": " ".join(
                    e["sha256"] for e in view["evidence"] if control["id"] in e["controls"]
                ),
                "result": result.get("result"),
                "result_reason": result.get("reason"),
                "assessor": primary["assessor"] if primary and result else None,
            }
        )
    return rows


def statement_csv(view: dict[str, Any]) -> bytes:
    return _csv(STATEMENT_COLUMNS, statement_rows(view))


def statement_json(view: dict[str, Any]) -> bytes:
    return json.dumps(view, indent=2, sort_keys=True).encode()


def _uuid(*parts: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "/".join(parts)))


_OSCAL_STATE = {
    "compliant": ("satisfied", None),
    "not-applicable": ("satisfied", "not-applicable"),
    "partially-compliant": ("not-satisfied", "partially-compliant"),
    "non-compliant": ("not-satisfied", "non-compliant"),
}


def statement_oscal(view: dict[str, Any], *, now: str) -> dict[str, Any]:
    """The statement's completed assessments as an OSCAL 1.1 assessment-results document."""
    controls = {c["id"]: c for c in view["controls"]}
    results = []
    for assessment in view.get("assessments", []):
        if assessment["state"] != "completed":
            continue
        findings, observations = [], []
        for control_id, result in sorted(assessment["results"].items()):
            observation_uuid = _uuid(view["id"], assessment["id"], control_id, "observation")
            evidence = [
                {
                    "href": f"#evidence-{e['sha256']}",
                    "description": f"{e['filename']} ({e['media_type']}), SHA-256 {e['sha256']}",
                }
                for e in view["evidence"]
                if control_id in e["controls"]
            ]
            observation: dict[str, Any] = {
                "uuid": observation_uuid,
                "title": f"Answer to {control_id}",
                "description": (view["answers"].get(control_id, {}).get("answer") or "No answer.")[
                    :4000
                ],
                "methods": ["EXAMINE"],
                "collected": assessment["completed_at"],
            }
            if evidence:
                observation["relevant-evidence"] = evidence
            observations.append(observation)
            state, reason = _OSCAL_STATE[result["result"]]
            status: dict[str, Any] = {"state": state}
            if reason:
                status["reason"] = reason
            findings.append(
                {
                    "uuid": _uuid(view["id"], assessment["id"], control_id, "finding"),
                    "title": f"{control_id}: {controls.get(control_id, {}).get('title', '')}",
                    "description": result["reason"] or result["result"],
                    "props": [
                        {
                            "name": "level",
                            "value": controls.get(control_id, {}).get("level", "MUST"),
                            "ns": "urn:gcx:coco",
                        }
                    ],
                    "target": {
                        "type": "statement-id",
                        "target-id": f"{control_id.lower()}_statement",
                        "status": status,
                    },
                    "related-observations": [{"observation-uuid": observation_uuid}],
                }
            )
        props = [
            {"name": "assessor", "value": assessment["assessor"], "ns": "urn:gcx:coco"},
            {
                "name": "verdict",
                "value": assessment["outcome"] or "none",
                "ns": "urn:gcx:coco",
            },
            {"name": "verdict-rule", "value": assessment["rule"] or "none", "ns": "urn:gcx:coco"},
        ]
        remarks = None
        if assessment.get("override_justification"):
            remarks = f"Verdict overridden by the assessor: {assessment['override_justification']}"
        result_doc: dict[str, Any] = {
            "uuid": _uuid(view["id"], assessment["id"]),
            "title": f"Assessment {assessment['ordinal']} of statement {view['id']}",
            "description": (
                f"Code of Connection assessment of {view['organisation']} against catalogue "
                f"version {view['catalogue_version']}."
            ),
            "start": assessment["started_at"],
            "end": assessment["completed_at"],
            "props": props,
            "reviewed-controls": {
                "control-selections": [
                    {"include-controls": [{"control-id": c.lower()} for c in sorted(controls)]}
                ]
            },
            "observations": observations,
            "findings": findings,
        }
        if remarks:
            result_doc["remarks"] = remarks
        results.append(result_doc)
    document: dict[str, Any] = {
        "uuid": _uuid(view["id"], "assessment-results"),
        "metadata": {
            "title": f"Code of Connection assessment results for {view['organisation']}",
            "last-modified": now,
            "version": view["id"],
            "oscal-version": OSCAL_VERSION,
        },
        "import-ap": {"href": f"urn:gcx:coco:catalogue:{view['catalogue_version']}"},
        "results": results,
    }
    return {"assessment-results": document}


def network_csv(rows: list[dict[str, Any]]) -> bytes:
    return _csv(NETWORK_COLUMNS, rows)


def network_json(rows: list[dict[str, Any]]) -> bytes:
    return json.dumps(rows, indent=2, sort_keys=True).encode()
