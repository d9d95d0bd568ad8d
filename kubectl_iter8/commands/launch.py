"""``kubectl iter8 launch``: validate an experiment and run it."""

from __future__ import annotations

import click

from .common import CLIState, local_option, pass_state, require_local, run_dir_option


@click.command()
@local_option
@click.option(
    "-f",
    "--file",
    "files",
    multiple=True,
    metavar="FILE",
    help="Experiment or chart-values YAML ('-' for standard input); repeatable, merged in order.",
)
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Set a value, Helm style (tasks={http,assess}, http.url=URL, spec[0].with.qps=5); repeatable.",
)
@run_dir_option
@click.option(
    "--dry-run", is_flag=True, help="Validate and print the experiment; run nothing, write nothing."
)
@pass_state
def launch(
    state: CLIState, local: bool, files: tuple[str, ...], sets: tuple[str, ...], run_dir: str, dry_run: bool
) -> None:
    """Validate an experiment and run it.

    \b
    The experiment comes from -f files, Iter8 chart values, or both:
      kubectl iter8 launch --local -f experiment.yaml
      kubectl iter8 launch --local --set tasks={http,assess} --set http.url=http://127.0.0.1:8080/get \\
          --set assess.SLOs.upper.http/latency-mean=50
    """
    from ..aio import run_async
    from ..errors import Iter8Error
    from ..experiment import prepare
    from ..runner import Runner
    from ..storage import LocalStore, dump_yaml
    from ..values import load_experiment

    require_local(local)
    hooks = state.require_hooks()
    experiment = load_experiment(list(files), list(sets), hooks.tasks)
    prepared = prepare(experiment, hooks.tasks)
    if dry_run:
        click.echo(dump_yaml(experiment.document()), nl=False)
        return
    store = LocalStore(run_dir)
    store.check_writable()
    result = run_async(Runner(experiment, prepared, store, hooks, work_dir=store.run_dir).run())
    if result.failure:
        raise Iter8Error(f"experiment failed: {result.failure_message} (result in {store.description})")
    done = result.num_completed_tasks
    click.echo(f"experiment completed: {done} of {len(prepared)} tasks; result in {store.description}")
