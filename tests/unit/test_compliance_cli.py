"""The ``gcx compliance`` command group: its commands exist and need a token."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from gcx.cli.compliance import compliance


def test_compliance_group_has_the_workflow_commands() -> None:
    """Every step of the workflow has a command."""
    expected = {
        "catalogue",
        "publish",
        "account",
        "start",
        "answer",
        "evidence",
        "request-sign-off",
        "sign-off",
        "assess",
        "result",
        "complete",
        "return",
        "approve",
        "withdraw",
        "extension",
        "decide-extension",
        "dashboard",
        "register",
        "export",
        "report",
        "consistency",
        "selfcheck",
        "sweep",
        "second-assessment",
        "notifications",
    }
    assert expected <= set(compliance.commands)


def test_commands_refuse_to_run_without_a_token(tmp_path: Path) -> None:
    """Without --token or a token variable the command stops with a usage error."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.endswith("_TOKEN")}
    result = CliRunner(env={**env, "GCX_COMPLIANCE_TOKEN": "", "GCX_OPERATOR_TOKEN": ""}).invoke(
        compliance, ["dashboard", "--home", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "token" in result.output.lower()
