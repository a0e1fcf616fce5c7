"""Helpers for the generated GitHub workflows, hidden from the main help: `pr-comment`
(the plan as one pull-request comment, updated in place) and `is-enabled` (whether the
sync workflow should do anything)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reconciler.cli.application import ConfigDirOption, app, config_dir_of


@app.command("pr-comment", hidden=True)
def pr_comment(
    file: Annotated[
        Path, typer.Option("--file", help="The plan's Markdown (`plan --format markdown`).")
    ],
    repo: Annotated[str, typer.Option("--repo", help="OWNER/REPO (github.repository).")],
    pr: Annotated[int, typer.Option("--pr", help="The pull-request number.")],
    head_sha: Annotated[
        str | None,
        typer.Option(
            "--head-sha", help="The commit planned (shown in the comment).", show_default=False
        ),
    ] = None,
    author: Annotated[
        str,
        typer.Option(
            "--author", help="The login the token writes as: only its comments are edited."
        ),
    ] = "github-actions[bot]",
) -> None:
    """CI helper: post FILE as the PR's plan comment, updating the previous one in place
    (found by its hidden marker and its author: this token's identity). Token from
    GITHUB_TOKEN, API root from GITHUB_API_URL."""
    from reconciler.notify.github import post_plan_comment

    result = post_plan_comment(file, repo, pr, head_sha=head_sha, author=author)
    typer.echo(f"plan comment {result.action}: {result.url or result.comment_id}")


@app.command("is-enabled", hidden=True)
def is_enabled(ctx: typer.Context, config_dir: ConfigDirOption = None) -> None:
    """CI helper: print `true` or `false` (settings.enabled); exit 1 only if the config is
    invalid. The sync workflow uses it to end green, doing nothing, while deactivated."""
    from reconciler.config.loader import load_settings_only

    # settings.yaml alone: a deactivated integration may have mappings mid-edit.
    settings = load_settings_only(config_dir_of(ctx, config_dir))
    typer.echo("true" if settings.enabled else "false")
