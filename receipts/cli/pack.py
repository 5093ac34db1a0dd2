"""``receipts pack import lm-eval``: bring a task from another harness in as a receipts eval pack."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from receipts.cli.app import app, out, shown

__all__ = ["import_lm_eval"]

pack_app = typer.Typer(help="Work with eval packs: import tasks from other harnesses.", no_args_is_help=True)
import_app = typer.Typer(help="Import a task from another eval harness as a pack.", no_args_is_help=True)
pack_app.add_typer(import_app, name="import")
app.add_typer(pack_app, name="pack")


@import_app.command("lm-eval")
def import_lm_eval(
    task_yaml: Annotated[
        Path, typer.Argument(help="An lm-eval 0.4.9 task YAML (multiple_choice or generate_until).")
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="The pack folder to create (must not exist).")],
    data: Annotated[
        Path | None,
        typer.Option(
            help="The docs: .jsonl, .json, .csv or .parquet (default: the YAML's local data_files)."
        ),
    ] = None,
    pack_id: Annotated[
        str | None, typer.Option("--id", help="Pack id (default: the --out folder's name).")
    ] = None,
    license_id: Annotated[
        str, typer.Option("--license", help="SPDX licence of the docs (default NOASSERTION: unknown).")
    ] = "NOASSERTION",
    id_field: Annotated[str, typer.Option(help="The doc field holding each doc's id.")] = "id",
    filter_name: Annotated[
        str | None, typer.Option("--filter", help="Which filter_list entry to score (default: the first).")
    ] = None,
    fewshot_data: Annotated[
        Path | None,
        typer.Option(help="The docs of the task's fewshot_split, when it is not the evaluated split's file."),
    ] = None,
    docs_processed: Annotated[
        bool,
        typer.Option(
            help="--data already holds the output of the task's process_docs (it is recorded, not run)."
        ),
    ] = False,
) -> None:
    """Translate an lm-eval task YAML and its local docs into a receipts eval pack.

    Nothing from the YAML or the data is executed; anything that cannot be translated is refused
    with the YAML key and its line.

    Example: receipts pack import lm-eval arc_easy.yaml --data arc_easy.jsonl --out packs/arc-easy
    """
    from runner.eval.importers import import_lm_eval_task  # lazily: the kernel reaches the runner via the CLI

    done = import_lm_eval_task(
        task_yaml,
        out_dir,
        data=data,
        pack_id=pack_id,
        license_id=license_id,
        id_field=id_field,
        filter_name=filter_name,
        docs_processed=docs_processed,
        fewshot_data=fewshot_data,
    )
    out.print(
        f"[green]ok[/green] pack {shown(done.id)} from lm-eval task {shown(done.task)}: {done.items} items "
        f"({done.derived_ids} ids derived), digest sha256:{done.digest} -> {shown(done.path)}"
    )
